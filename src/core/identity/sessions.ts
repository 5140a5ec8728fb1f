import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import type { JwtCodec } from './jwt.js';
import { CORE_ROLE, PLATFORM_ROLES, type PlatformRole } from './platform-roles.js';
import type { Principal } from './principal.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface SessionRow {
  account_id: string; username: string; role: PlatformRole; email: string | null;
  namespaces: string[] | null; projects: string[] | null; disabled: boolean;
}

/**
 * Account sessions: each JWT is a row (its `jti`), so logout and account changes revoke it at once.
 * A request costs the signature check and one indexed read (session, account and its namespaces'
 * projects in one statement): the account is taken as it is now, never from the token's claims.
 */
export class SessionService {
  constructor(private readonly orm: MikroORM, readonly jwt: JwtCodec) {}

  async open(account: { id: string; username: string; role: PlatformRole }): Promise<{ token: string; expiresAt: Date }> {
    const { token, jti, expiresAt } = await this.jwt.sign(account);
    // The account's expired sessions go as a new one comes.
    await sql(this.orm, `with gone as (delete from auth_sessions where account_id = ? and expires_at < now())
      insert into auth_sessions (id, account_id, expires_at) values (?, ?, ?)`, [account.id, jti, account.id, expiresAt.toISOString()]);
    return { token, expiresAt };
  }

  async authenticate(bearer: string): Promise<Principal | undefined> {
    const claims = await this.jwt.verify(bearer);
    if (!claims || !UUID.test(claims.jti)) return undefined;
    const [row] = await sql<SessionRow>(this.orm, `select a.id as account_id, a.username, a.role, a.email, a.namespaces, a.disabled,
        case when a.namespaces is null then null
          else array(select p.repository_identifier from projects p where p.namespace = any(a.namespaces) order by 1) end as projects
      from auth_sessions s join accounts a on a.id = s.account_id
      where s.id = ? and s.expires_at > now()`, [claims.jti], 'auth_session');
    if (!row || row.disabled || row.account_id !== claims.sub || !PLATFORM_ROLES.includes(row.role)) return undefined;
    return {
      tokenId: claims.jti, name: row.username, role: CORE_ROLE[row.role], platformRole: row.role, accountId: row.account_id,
      email: row.email, projects: row.projects, namespaces: row.namespaces,
    };
  }

  async revoke(sessionId: string): Promise<void> {
    await sql(this.orm, 'delete from auth_sessions where id = ?', [sessionId]);
  }
}
