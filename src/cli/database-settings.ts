import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config.js';

/**
 * The only settings the token commands need: where the database is. Read on their own, not with
 * the server's whole configuration, so a door half-configured in the shell (a `SLACK_*` without
 * its partner, an unreadable `GITHUB_PRIVATE_KEY_PATH`) does not stop `token list`. Same
 * variables, defaults and messages as src/config.ts.
 */
const schema = z.object({
  DATABASE_URL: z.string().refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL').optional(),
  FLOWGATE_DATA_DIR: z.string().min(1).default('.flowgate'),
  FLOWGATE_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
});

export interface DatabaseSettings {
  databaseUrl?: string;
  dataDir: string;
  embeddedPgPort: number;
}

export function loadDatabaseSettings(env: Record<string, string | undefined>): DatabaseSettings {
  // As in loadConfig: `X=` means "not set".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  return { databaseUrl: e.DATABASE_URL, dataDir: path.resolve(e.FLOWGATE_DATA_DIR), embeddedPgPort: e.FLOWGATE_EMBEDDED_PG_PORT };
}
