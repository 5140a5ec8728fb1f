import { randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { rateLimited } from '../../errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import { digest } from './console-sessions.js';

export const LOGIN_LINK_TTL_MS = 10 * 60_000;
/** Links a person may have outstanding at once: the bot answers each `/flowgate login`, and a loop should not fill the table. */
const OUTSTANDING_PER_PERSON = 5;

/**
 * One-time sign-in links for the console, sent to a person by a chat bot that already knows who
 * they are. Only a digest is kept; a link is read (the confirm page) without being spent, and spent
 * once, by the POST that opens the session — link unfurlers and mail scanners fetch every URL.
 */
export class LoginLinks {
  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog) {}

  /** A new link's secret for `email` (the door resolved it from the chat identity). */
  async issue(email: string, door: string): Promise<{ secret: string; expiresAt: Date }> {
    const who = email.toLowerCase();
    const [{ outstanding }] = await sql<{ outstanding: number }>(this.orm,
      `with gone as (delete from console_login_links where expires_at < now() - interval '1 day')
       select count(*)::int as outstanding from console_login_links where email = ? and used_at is null and expires_at > now()`, [who]);
    if (outstanding >= OUTSTANDING_PER_PERSON)
      throw rateLimited(`${OUTSTANDING_PER_PERSON} sign-in links for ${who} are still unused; use one of them or wait ${LOGIN_LINK_TTL_MS / 60_000} minutes`);
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + LOGIN_LINK_TTL_MS);
    await sql(this.orm, 'insert into console_login_links (digest, email, door, expires_at) values (?, ?, ?, ?)', [digest(secret), who, door, expiresAt.toISOString()]);
    await this.audit.record({ name: who, door }, 'console.link_sent', 'person', who, { expiresAt: expiresAt.toISOString() });
    return { secret, expiresAt };
  }

  /** Whose link this is, while it is usable; reading spends nothing. */
  async peek(secret: string): Promise<{ email: string; expiresAt: Date } | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) return undefined;
    const [row] = await sql<{ email: string; expires_at: string }>(this.orm,
      'select email, expires_at from console_login_links where digest = ? and used_at is null and expires_at > now()', [digest(secret)]);
    return row ? { email: row.email, expiresAt: new Date(row.expires_at) } : undefined;
  }

  /** Spends a link: its email, or undefined when it is unknown, used or expired (one statement, so two tabs cannot both spend it). */
  async consume(secret: string): Promise<{ email: string; door: string } | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) return undefined;
    const [row] = await sql<{ email: string; door: string }>(this.orm,
      'update console_login_links set used_at = now() where digest = ? and used_at is null and expires_at > now() returning email, door', [digest(secret)]);
    return row;
  }
}
