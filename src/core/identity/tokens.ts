import { createHash, randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ApiToken, type Role } from '../../db/entities/api-token.js';
import { sql } from '../../db/sql.js';
import { forbidden, notFound, unauthenticated } from '../../errors.js';
import { AuditLog, type Actor } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import { mayManageToken, mintRefusal } from './authority.js';
import { PersonScope } from './person-scope.js';
import { actorOf, isUnscopedOwner, type Principal } from './principal.js';

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const LAST_USED_GRANULARITY_MS = 60_000;

export interface NewToken {
  name: string;
  role: Role;
  email?: string | null;
  projects?: string[] | null;
  /** The token that creates this one (see `createBy`). */
  createdBy?: string | null;
}

/** API tokens: only a hash is stored; the secret is shown once, at creation. */
interface TokenRow {
  id: string; name: string; role: Role; email: string | null; projects: string[] | null;
  // Timestamps arrive as text on the ORM's connections (the ORM parses its own dates).
  run_id: string | null; expires_at: string | null; last_used_at: string | null;
}

export class TokenService {
  private readonly people: PersonScope;

  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog) {
    this.people = new PersonScope(orm);
  }

  async create(input: NewToken, actor: Actor, secret = `fg_${randomBytes(32).toString('base64url')}`): Promise<{ token: ApiToken; secret: string }> {
    const token = Object.assign(new ApiToken(), {
      id: newId(), name: input.name, role: input.role, email: input.email?.toLowerCase() ?? null,
      projects: input.projects ?? null, tokenHash: hash(secret), createdAt: new Date(), lastUsedAt: null, createdBy: input.createdBy ?? null,
    });
    await this.orm.em.fork().insert(ApiToken, token);
    await this.audit.record(actor, 'token.created', 'token', token.id, { name: token.name, role: token.role, projects: token.projects, ...(token.createdBy ? { createdBy: token.createdBy } : {}) });
    return { token, secret };
  }

  /**
   * A token created through the API by another token, within that token's authority (role, projects,
   * and whom it may act for: see authority.ts and person-scope.ts). A refusal writes nothing.
   */
  async createBy(issuer: Principal, input: NewToken, door = 'rest'): Promise<{ token: ApiToken; secret: string }> {
    const refusal = mintRefusal(issuer, input) ?? (await this.emailRefusal(issuer, input.email));
    if (refusal) throw forbidden(refusal);
    return this.create({ ...input, createdBy: issuer.tokenId }, actorOf(issuer, door));
  }

  /** A token acts as its email (approvals): only an unscoped owner names anyone, an owner a person of its projects, others themselves. */
  private async emailRefusal(issuer: Principal, email: string | null | undefined): Promise<string | undefined> {
    if (!email || isUnscopedOwner(issuer) || email.toLowerCase() === issuer.email) return undefined;
    if (issuer.role !== 'owner') return `Token "${issuer.name}" (${issuer.role}) may create tokens only for its own email (${issuer.email ?? 'none'})`;
    return this.people.manageRefusal(issuer, email);
  }

  /**
   * A per-execution token: scoped to one run and its project, expiring after `ttlHours`. Called
   * inside the engine step that hands the secret to the pipeline, so the secret is never checkpointed.
   */
  async createForRun(run: { id: string; repositoryIdentifier: string }, ttlHours: number, actor: Actor): Promise<{ id: string; secret: string; expiresAt: Date }> {
    const secret = `fgx_${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(Date.now() + ttlHours * 3_600_000);
    const token = Object.assign(new ApiToken(), {
      id: newId(), name: `execution:${run.id}`, role: 'application' as const, email: null, projects: [run.repositoryIdentifier],
      tokenHash: hash(secret), createdAt: new Date(), lastUsedAt: null, runId: run.id, expiresAt,
    });
    await this.orm.em.fork().insert(ApiToken, token);
    await this.audit.record(actor, 'token.created', 'token', token.id, { name: token.name, role: token.role, runId: run.id, expiresAt: expiresAt.toISOString() });
    return { id: token.id, secret, expiresAt };
  }

  /** The caller behind a secret; unknown or revoked tokens give undefined, an expired one a 401 saying so. */
  async authenticate(secret: string): Promise<Principal | undefined> {
    // Every request passes here: plain SQL, not the ORM.
    const [token] = await sql<TokenRow>(this.orm, 'select id, name, role, email, projects, run_id, expires_at, last_used_at from api_tokens where token_hash = ?', [hash(secret)]);
    if (!token) return undefined;
    const now = Date.now();
    const expiresAt = token.expires_at ? new Date(token.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= now) throw unauthenticated(`Token expired at ${expiresAt.toISOString()}`);
    if (!token.last_used_at || now - new Date(token.last_used_at).getTime() > LAST_USED_GRANULARITY_MS) {
      await sql(this.orm, 'update api_tokens set last_used_at = ? where id = ?', [new Date(now), token.id]);
    }
    return { tokenId: token.id, name: token.name, role: token.role, email: token.email ?? null, projects: token.projects ?? null, runId: token.run_id ?? null };
  }

  /**
   * Tokens people and applications hold; per-execution tokens (one per CI/CD run, short-lived) are not
   * listed. Seen by `viewer` (a token other than an unscoped owner): the tokens it created, and itself.
   */
  list(viewer?: Principal): Promise<ApiToken[]> {
    const where = !viewer || isUnscopedOwner(viewer) ? { runId: null } : { runId: null, $or: [{ id: viewer.tokenId }, { createdBy: viewer.tokenId }] };
    return this.orm.em.fork().find(ApiToken, where, { orderBy: { createdAt: 'asc' } });
  }

  /** Revokes a token; `by` (a token other than an unscoped owner) only one it created, or itself. */
  async delete(id: string, actor: Actor, by?: Principal): Promise<void> {
    const em = this.orm.em.fork();
    // The authority check is part of the delete, so a refusal removes nothing.
    const where = !by || isUnscopedOwner(by) ? { id } : { id, $or: [{ id: by.tokenId }, { createdBy: by.tokenId }] };
    const removed = await em.nativeDelete(ApiToken, where);
    if (!removed) {
      const existing = by ? await em.findOne(ApiToken, { id }) : null;
      if (existing && by && !mayManageToken(by, existing))
        throw forbidden(`Token "${by.name}" may revoke only tokens it created, and itself; only an unscoped owner revokes others`);
      throw notFound(`Token ${id} not found`);
    }
    await this.audit.record(actor, 'token.deleted', 'token', id);
  }

  /**
   * Bootstrap: FLOWGATE_ADMIN_TOKEN guarantees an owner token with that secret. Without it, the
   * first start generates one and returns it so it can be printed once.
   */
  async ensureAdmin(adminSecret: string | undefined): Promise<string | undefined> {
    const em = this.orm.em.fork();
    const actor = { name: 'system', door: 'startup' };
    if (adminSecret) {
      if (!(await em.findOne(ApiToken, { tokenHash: hash(adminSecret) }))) await this.create({ name: 'admin', role: 'owner' }, actor, adminSecret);
      return undefined;
    }
    if ((await em.count(ApiToken, { role: 'owner' })) > 0) return undefined;
    const { secret } = await this.create({ name: 'admin', role: 'owner' }, actor);
    return secret;
  }
}

export const presentToken = (t: ApiToken) => ({
  id: t.id, name: t.name, role: t.role, email: t.email ?? null, projects: t.projects ?? null,
  createdAt: t.createdAt.toISOString(), lastUsedAt: t.lastUsedAt?.toISOString() ?? null, createdBy: t.createdBy ?? null,
});
