import type { MikroORM } from '@mikro-orm/postgresql';
import { sql, transaction, type Query } from '../../db/sql.js';
import { conflict, forbidden, invalidContent, notFound } from '../../errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import { hashPassword } from './passwords.js';
import { platformRoleAtMost, type PlatformRole } from './platform-roles.js';
import { actorOf, platformRoleOf, type Principal } from './principal.js';
import type { SessionService } from './sessions.js';

export interface AccountRow {
  id: string; username: string; password_hash: string; role: PlatformRole; email: string | null; namespaces: string[] | null;
  disabled: boolean; created_at: string; updated_at: string; last_login_at: string | null;
}

export interface NewAccount { username: string; password: string; role?: PlatformRole; email?: string | null; namespaces?: string[] | null }
export interface AccountChange { role?: PlatformRole; email?: string | null; namespaces?: string[] | null; password?: string; disabled?: boolean }

const COLUMNS = 'id, username, password_hash, role, email, namespaces, disabled, created_at, updated_at, last_login_at';
const iso = (t: string | null) => (t === null ? null : new Date(t).toISOString());

export const presentAccount = (a: AccountRow) => ({
  id: a.id, username: a.username, role: a.role, email: a.email, namespaces: a.namespaces, disabled: a.disabled,
  createdAt: iso(a.created_at), updatedAt: iso(a.updated_at), lastLoginAt: iso(a.last_login_at),
});

/** Admin changes are serialised by this lock, so two of them cannot remove the last unscoped admin together. */
const ADMINS_LOCK = "select pg_advisory_xact_lock(hashtext('flowgate:accounts:admins'))";
const isUnscopedAdmin = (a: Pick<AccountRow, 'role' | 'namespaces' | 'disabled'>) => a.role === 'admin' && a.namespaces === null && !a.disabled;

/**
 * Accounts, managed by admins (admin accounts and owner tokens) within their own authority: a role
 * at most theirs, namespaces within theirs; a scoped admin sees only accounts inside its namespaces.
 */
export class AccountService {
  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog, readonly sessions: SessionService) {}

  async register(issuer: Principal, input: NewAccount): Promise<AccountRow> {
    const scope = await this.authority(issuer);
    const role = input.role ?? 'viewer';
    const namespaces = input.namespaces ?? null;
    this.requireWithin(issuer, scope, role, namespaces);
    await this.requireKnownNamespaces(namespaces);
    const passwordHash = await hashPassword(input.password);
    const row = await this.unique(() => sql<AccountRow>(this.orm, `insert into accounts (id, username, password_hash, role, email, namespaces)
      values (?, ?, ?, ?, ?, ?) returning ${COLUMNS}`, [newId(), input.username, passwordHash, role, input.email ?? null, namespaces]));
    await this.audit.record(actorOf(issuer), 'user.registered', 'user', row[0].id, { username: input.username, role, namespaces, email: row[0].email });
    return row[0];
  }

  async list(viewer: Principal): Promise<AccountRow[]> {
    const scope = await this.authority(viewer);
    const rows = await sql<AccountRow>(this.orm, `select ${COLUMNS} from accounts order by username`);
    return rows.filter((a) => this.sees(scope, a));
  }

  async find(username: string): Promise<AccountRow | undefined> {
    return (await sql<AccountRow>(this.orm, `select ${COLUMNS} from accounts where username = ?`, [username]))[0];
  }

  async findById(id: string): Promise<AccountRow | undefined> {
    return (await sql<AccountRow>(this.orm, `select ${COLUMNS} from accounts where id = ?`, [id]))[0];
  }

  /** A password, role or namespace change, or disabling, ends every session of the account. */
  async update(viewer: Principal, username: string, change: AccountChange): Promise<AccountRow> {
    const scope = await this.authority(viewer);
    const current = await this.visible(scope, username);
    const next = { role: change.role ?? current.role, namespaces: change.namespaces !== undefined ? change.namespaces : current.namespaces, disabled: change.disabled ?? current.disabled };
    if (change.role !== undefined || change.namespaces !== undefined) this.requireWithin(viewer, scope, next.role, next.namespaces);
    if (change.namespaces !== undefined) await this.requireKnownNamespaces(next.namespaces);
    const passwordHash = change.password !== undefined ? await hashPassword(change.password) : current.password_hash;
    const revoke = change.password !== undefined || next.role !== current.role || !sameSet(next.namespaces, current.namespaces) || (next.disabled && !current.disabled);
    const [row] = await transaction(this.orm, async (q) => {
      await this.keepLastAdmin(q, current, isUnscopedAdmin(next));
      if (revoke) {
        await q('delete from auth_sessions where account_id = ?', [current.id]);
        await q('delete from console_sessions where account_id = ?', [current.id]);
      }
      return this.unique(() => q<AccountRow>(`update accounts set role = ?, namespaces = ?, disabled = ?, password_hash = ?, email = ?, updated_at = now()
        where id = ? returning ${COLUMNS}`, [next.role, next.namespaces, next.disabled, passwordHash, change.email !== undefined ? change.email : current.email, current.id]));
    });
    const changed = Object.keys(change).filter((k) => k !== 'password');
    await this.audit.record(actorOf(viewer), 'user.updated', 'user', current.id, {
      username, changed: change.password !== undefined ? [...changed, 'password'] : changed, role: row.role, namespaces: row.namespaces, disabled: row.disabled, sessionsRevoked: revoke,
    });
    return row;
  }

  async delete(viewer: Principal, username: string): Promise<void> {
    const scope = await this.authority(viewer);
    const current = await this.visible(scope, username);
    await transaction(this.orm, async (q) => {
      await this.keepLastAdmin(q, current, false);
      await q('delete from accounts where id = ?', [current.id]);
    });
    await this.audit.record(actorOf(viewer), 'user.deleted', 'user', current.id, { username });
  }

  /** The caller's namespaces (null: all): an account's own, a token's those of its projects. Only admins manage accounts. */
  private async authority(p: Principal): Promise<string[] | null> {
    if (platformRoleOf(p) !== 'admin' || p.runId) throw forbidden('Forbidden - Requires role: admin');
    if (p.accountId) return p.namespaces ?? null;
    if (p.projects === null) return null;
    return (await sql<{ namespace: string }>(this.orm, 'select namespace from projects where repository_identifier = any(?)', [p.projects])).map((r) => r.namespace);
  }

  private requireWithin(issuer: Principal, scope: string[] | null, role: PlatformRole, namespaces: string[] | null): void {
    const own = platformRoleOf(issuer);
    if (!platformRoleAtMost(role, own)) throw forbidden(`${issuer.name} (${own}) may not grant the role ${role}: at most its own`);
    if (scope === null) return;
    if (namespaces === null) throw forbidden(`${issuer.name} is limited to namespaces ${scope.join(', ') || 'none'}: list the account's namespaces within them`);
    const outside = namespaces.filter((n) => !scope.includes(n));
    if (outside.length) throw forbidden(`${issuer.name} may not grant namespace(s) ${outside.join(', ')}: outside its own (${scope.join(', ') || 'none'})`);
  }

  private async requireKnownNamespaces(namespaces: string[] | null): Promise<void> {
    if (!namespaces?.length) return;
    const known = new Set((await sql<{ namespace: string }>(this.orm, 'select namespace from projects where namespace = any(?)', [namespaces])).map((r) => r.namespace));
    const unknown = namespaces.filter((n) => !known.has(n));
    if (unknown.length) throw invalidContent(`Unknown namespace(s): ${unknown.join(', ')}`);
  }

  /** A scoped admin sees only accounts whose namespaces lie within its own; others are not found, as if absent. */
  private sees(scope: string[] | null, a: AccountRow): boolean {
    return scope === null || (a.namespaces !== null && a.namespaces.every((n) => scope.includes(n)));
  }

  private async visible(scope: string[] | null, username: string): Promise<AccountRow> {
    const a = await this.find(username);
    if (!a || !this.sees(scope, a)) throw notFound(`Account ${username} not found`);
    return a;
  }

  /** Refuses (409) to leave no enabled unscoped admin: someone must be able to manage every account. */
  private async keepLastAdmin(q: Query, current: AccountRow, stillUnscopedAdmin: boolean): Promise<void> {
    if (!isUnscopedAdmin(current) || stillUnscopedAdmin) return;
    await q(ADMINS_LOCK);
    const [{ n }] = await q<{ n: number }>(`select count(*)::int as n from accounts where role = 'admin' and namespaces is null and not disabled and id <> ?`, [current.id]);
    if (n === 0) throw conflict(`${current.username} is the last unscoped admin: make another admin first`);
  }

  /** A taken username or email is 409, naming which. */
  private async unique<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code === '23505') throw conflict(e.constraint === 'accounts_email' ? 'That email belongs to another account' : 'That username is taken');
      throw err;
    }
  }
}

const sameSet = (a: string[] | null, b: string[] | null) =>
  a === null || b === null ? a === b : a.length === b.length && a.every((x) => b.includes(x));
