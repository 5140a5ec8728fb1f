import { existsSync } from 'node:fs';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { EmbeddedPostgres } from '../db/embedded-postgres.js';
import { createOrm, ensureDatabase, migrate } from '../db/orm.js';
import type { DatabaseSettings } from './database-settings.js';

export interface OpenDatabase {
  orm: MikroORM;
  close(): Promise<void>;
}

/**
 * Opens the server's database: DATABASE_URL, or else the embedded PostgreSQL in the data
 * directory. The embedded server is stopped afterwards only when this process started it:
 * if its postmaster.pid existed beforehand, a server is running there (or was left behind
 * and is now restarted) and is left running for whoever owns it.
 */
export async function openDatabase(config: DatabaseSettings): Promise<OpenDatabase> {
  let url = config.databaseUrl;
  let startedHere: EmbeddedPostgres | undefined;
  if (!url) {
    const wasRunning = existsSync(path.join(config.dataDir, 'pg', 'postmaster.pid'));
    const embedded = new EmbeddedPostgres(config.dataDir, config.embeddedPgPort);
    url = await embedded.start();
    if (!wasRunning) startedHere = embedded;
  }
  let orm: MikroORM | undefined;
  try {
    await ensureDatabase(url);
    orm = await createOrm(url, 2);
    await migrate(orm, url);
  } catch (err) {
    await orm?.close(true).catch(() => undefined);
    await startedHere?.stop().catch(() => undefined);
    throw err;
  }
  const opened = orm;
  return {
    orm: opened,
    async close() {
      try {
        await opened.close(true);
      } finally {
        await startedHere?.stop();
      }
    },
  };
}
