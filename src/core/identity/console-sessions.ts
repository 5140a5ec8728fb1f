import { createHash, randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import type { Person } from '../approvals/approval-rules.js';
import type { AuditLog } from '../audit/audit-log.js';
import { CORE_ROLE, PLATFORM_ROLES, type PlatformRole } from './platform-roles.js';
import type { PersonScope } from './person-scope.js';
import { callerLabel, type Principal } from './principal.js';

/** How a console session was opened: an account's password, a pasted API token, or a chat sign-in link. */
export type ConsoleSessionKind = 'account' | 'token' | 'person';

/** Who is signed in to the console, resolved as they are now (never from what the session kept). */
export interface ConsoleIdentity {
  /** The digest of the cookie: the row's key, never the cookie itself. */
  sessionId: string;
  kind: ConsoleSessionKind;
  principal: Principal;
  /** Who decides approvals: the email behind the session; null for a token without an email (it may browse, not decide). */
  person: Person | null;
  csrf: string;
  expiresAt: Date;
}

export interface ConsoleSessionTimes {
  /** A session unused for this long ends. */
  idleMs: number;
  /** A session ends this long after sign-in, used or not. */
  absoluteMs: number;
}

export const CONSOLE_SESSION_TIMES: ConsoleSessionTimes = { idleMs: 12 * 3_600_000, absoluteMs: 7 * 24 * 3_600_000 };
/** `last_seen_at` is written at most this often, so reading pages costs no write. */
const TOUCH_EVERY_MS = 60_000;

export const digest = (secret: string) => createHash('sha256').update(secret).digest('base64url');

interface SessionRow {
  kind: ConsoleSessionKind; account_id: string | null; token_id: string | null; email: string | null; csrf: string;
  last_seen_at: string; expires_at: string;
  // account
  username: string | null; a_role: PlatformRole | null; a_email: string | null; namespaces: string[] | null; disabled: boolean | null; a_projects: string[] | null;
  // token
  t_name: string | null; t_role: Principal['role'] | null; t_email: string | null; t_projects: string[] | null; t_expires_at: string | null; run_id: string | null;
}

/**
 * Console sessions: a PostgreSQL row per signed-in browser, keyed by the digest of its cookie, so
 * any replica serves it and logout, token revocation and account changes end it at once. The
 * subject (account, token or person) is read as it is now on every request, with the session, in
 * one statement.
 */
export class ConsoleSessions {
  constructor(
    private readonly orm: MikroORM,
    private readonly people: PersonScope,
    private readonly audit: AuditLog,
    private readonly times: ConsoleSessionTimes = CONSOLE_SESSION_TIMES,
  ) {}

  /** Opens a session; returns the cookie value (shown once, kept only as its digest). */
  async open(subject: { kind: 'account'; accountId: string } | { kind: 'token'; tokenId: string } | { kind: 'person'; email: string }, how: { door: string; ip: string; who: string }): Promise<{ cookie: string; expiresAt: Date }> {
    const cookie = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.times.absoluteMs);
    const values = [digest(cookie), subject.kind, subject.kind === 'account' ? subject.accountId : null, subject.kind === 'token' ? subject.tokenId : null,
      subject.kind === 'person' ? subject.email.toLowerCase() : null, randomBytes(24).toString('base64url'), expiresAt.toISOString()];
    // Ended sessions go as new ones come: no sweeper needed for a table that only grows with sign-ins.
    await sql(this.orm, `with gone as (delete from console_sessions where expires_at < now() or last_seen_at < now() - make_interval(secs => ?))
      insert into console_sessions (id_digest, kind, account_id, token_id, email, csrf, expires_at) values (?, ?, ?, ?, ?, ?, ?)`,
    [this.times.idleMs / 1000, ...values]);
    await this.audit.record({ name: how.who, door: how.door }, 'console.signed_in', subject.kind, subject.kind === 'account' ? subject.accountId : subject.kind === 'token' ? subject.tokenId : subject.email,
      { ip: how.ip, via: subject.kind });
    return { cookie, expiresAt };
  }

  /** The identity behind a cookie, or undefined when it is unknown, ended, or its subject is gone, disabled or expired. */
  async resolve(cookie: string): Promise<ConsoleIdentity | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return undefined;
    const id = digest(cookie);
    const [row] = await sql<SessionRow>(this.orm, `select s.kind, s.account_id, s.token_id, s.email, s.csrf, s.last_seen_at, s.expires_at,
        a.username, a.role as a_role, a.email as a_email, a.namespaces, a.disabled,
        case when a.id is null or a.namespaces is null then null
          else array(select p.repository_identifier from projects p where p.namespace = any(a.namespaces) order by 1) end as a_projects,
        t.name as t_name, t.role as t_role, t.email as t_email, t.projects as t_projects, t.expires_at as t_expires_at, t.run_id
      from console_sessions s
      left join accounts a on a.id = s.account_id
      left join api_tokens t on t.id = s.token_id
      where s.id_digest = ? and s.expires_at > now() and s.last_seen_at > now() - make_interval(secs => ?)`, [id, this.times.idleMs / 1000], 'console_session');
    if (!row) return undefined;
    const principal = await this.principalOf(id, row);
    if (!principal) return undefined;
    if (Date.now() - new Date(row.last_seen_at).getTime() > TOUCH_EVERY_MS)
      await sql(this.orm, 'update console_sessions set last_seen_at = now() where id_digest = ?', [id]);
    const email = principal.email;
    return {
      sessionId: id, kind: row.kind, principal, csrf: row.csrf, expiresAt: new Date(row.expires_at),
      person: email ? {
        email, name: row.kind === 'account' ? row.username ?? email : row.kind === 'token' ? row.t_name ?? email : email,
        as: row.kind === 'person' ? 'a console session opened with a one-time sign-in link' : `${callerLabel(principal)}, in the console`,
      } : null,
    };
  }

  private async principalOf(id: string, row: SessionRow): Promise<Principal | undefined> {
    if (row.kind === 'account') {
      if (!row.username || row.disabled || !row.a_role || !PLATFORM_ROLES.includes(row.a_role)) return undefined;
      return {
        tokenId: id, name: row.username, role: CORE_ROLE[row.a_role], platformRole: row.a_role, accountId: row.account_id!,
        email: row.a_email, projects: row.a_projects, namespaces: row.namespaces,
      };
    }
    if (row.kind === 'token') {
      if (!row.t_name || !row.t_role || row.run_id) return undefined;
      if (row.t_expires_at && new Date(row.t_expires_at).getTime() <= Date.now()) return undefined;
      return { tokenId: row.token_id!, name: row.t_name, role: row.t_role, email: row.t_email ?? null, projects: row.t_projects ?? null };
    }
    // A person signed in through chat sees the projects they own or belong to, as a member would.
    const email = row.email!;
    return { tokenId: id, name: email, role: 'member', email, projects: await this.people.projectsOf(email) };
  }

  async end(sessionId: string): Promise<void> {
    await sql(this.orm, 'delete from console_sessions where id_digest = ?', [sessionId]);
  }

  /** Ends every console session of a person (all kinds whose email is theirs); the count. */
  async endFor(email: string): Promise<number> {
    const rows = await sql(this.orm, `delete from console_sessions s where s.email = ?
      or s.account_id in (select id from accounts where email = ?) or s.token_id in (select id from api_tokens where email = ?) returning 1`,
    [email.toLowerCase(), email.toLowerCase(), email.toLowerCase()]);
    return rows.length;
  }
}
