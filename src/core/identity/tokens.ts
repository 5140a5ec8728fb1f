import { createHash, randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ApiToken, type Role } from '../../db/entities/api-token.js';
import { sql } from '../../db/sql.js';
import { notifySql, type CacheInvalidation } from '../cache/invalidation.js';
import { TtlCache } from '../cache/ttl-cache.js';
import { forbidden, notFound, unauthenticated } from '../../errors.js';
import { AuditLog, type Actor } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import { mayManageToken, mintRefusal } from './authority.js';
import { PersonScope } from './person-scope.js';
import { looksLikeJwt } from './jwt.js';
import { actorOf, callerLabel, isUnscopedOwner, type Principal } from './principal.js';

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const LAST_USED_GRANULARITY_MS = 60_000;
/** `last_used_at` is written in batches, one statement per this interval at most. */
const LAST_USED_FLUSH_MS = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

/** What a token check needs, cached by the token's hash (never its secret). */
interface KnownToken {
  principal: Readonly<Principal>;
  expiresAt: number | null;
  /** When its use was last recorded (or read), ms. */
  lastUsedAt: number | null;
}

export interface TokenCacheOptions {
  invalidation: CacheInvalidation;
  ttlMs: number;
}

/** Resolves an account's JWT (see sessions.ts). */
export interface SessionAuthenticator {
  authenticate(jwt: string): Promise<Principal | undefined>;
}

export class TokenService {
  private readonly people: PersonScope;
  private sessions?: SessionAuthenticator;
  private readonly cache?: TtlCache<KnownToken>;
  private readonly invalidation?: CacheInvalidation;
  /** Uses not yet written to `last_used_at`: token id → when. */
  private readonly pendingUse = new Map<string, Date>();
  private flushTimer?: NodeJS.Timeout;

  /** Without `cache`, every check reads the database (the CLI). */
  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog, cache?: TokenCacheOptions) {
    this.people = new PersonScope(orm);
    this.invalidation = cache?.invalidation;
    // Execution tokens are never kept: each check reads the row, so caching cannot outlive their run.
    if (cache) this.cache = new TtlCache(cache.invalidation, { kind: 'token', ttlMs: cache.ttlMs, idOf: (t) => t.principal.tokenId, keep: (t) => !t.principal.runId });
  }

  /** From now on a bearer shaped like a JWT is an account's session: every route of every dialect takes both. */
  acceptSessions(sessions: SessionAuthenticator): void {
    this.sessions = sessions;
  }

  /** Starts writing recorded uses in batches. */
  start(): void {
    this.flushTimer ??= setInterval(() => void this.flushUse(), LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushUse();
  }

  /** Writes the recorded uses in one statement; a failed write is retried with the next batch. */
  async flushUse(): Promise<void> {
    if (!this.pendingUse.size) return;
    const batch = [...this.pendingUse];
    this.pendingUse.clear();
    try {
      await sql(this.orm, `update api_tokens t set last_used_at = v.at from unnest(?::uuid[], ?::timestamptz[]) as v(id, at)
        where t.id = v.id and (t.last_used_at is null or t.last_used_at < v.at)`, [batch.map(([id]) => id), batch.map(([, at]) => at.toISOString())]);
    } catch {
      for (const [id, at] of batch) if (!this.pendingUse.has(id)) this.pendingUse.set(id, at);
    }
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
    // An account's session is no token: what it creates has no creator token (an unscoped owner manages it).
    return this.create({ ...input, createdBy: issuer.accountId ? null : issuer.tokenId }, actorOf(issuer, door));
  }

  /** A token acts as its email (approvals): only an unscoped owner names anyone, an owner a person of its projects, others themselves. */
  private async emailRefusal(issuer: Principal, email: string | null | undefined): Promise<string | undefined> {
    if (!email || isUnscopedOwner(issuer) || email.toLowerCase() === issuer.email) return undefined;
    if (issuer.role !== 'owner') return `${callerLabel(issuer)} (${issuer.role}) may create tokens only for its own email (${issuer.email ?? 'none'})`;
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

  /**
   * The caller behind a secret; unknown or revoked tokens give undefined, an expired one a 401 saying
   * so. Every request passes here: a cached token costs no statement (see TtlCache for how long a
   * change elsewhere may go unseen), an uncached one a plain SQL read.
   */
  async authenticate(secret: string): Promise<Principal | undefined> {
    if (this.sessions && looksLikeJwt(secret)) {
      const account = await this.sessions.authenticate(secret);
      if (account) return account;
    }
    const tokenHash = hash(secret);
    const token = this.cache ? await this.cache.get(tokenHash, () => this.read(tokenHash)) : await this.read(tokenHash);
    if (!token) return undefined;
    const now = Date.now();
    if (token.expiresAt !== null && token.expiresAt <= now) throw unauthenticated(`Token expired at ${new Date(token.expiresAt).toISOString()}`);
    if (token.lastUsedAt === null || now - token.lastUsedAt > LAST_USED_GRANULARITY_MS) {
      token.lastUsedAt = now;
      this.pendingUse.set(token.principal.tokenId, new Date(now));
    }
    return { ...token.principal };
  }

  private async read(tokenHash: string): Promise<KnownToken | undefined> {
    const [row] = await sql<TokenRow>(this.orm, 'select id, name, role, email, projects, run_id, expires_at, last_used_at from api_tokens where token_hash = ?', [tokenHash]);
    if (!row) return undefined;
    return {
      principal: Object.freeze({ tokenId: row.id, name: row.name, role: row.role, email: row.email ?? null, projects: row.projects ? Object.freeze([...row.projects]) as string[] : null, runId: row.run_id ?? null }),
      expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null,
      lastUsedAt: row.last_used_at ? new Date(row.last_used_at).getTime() : null,
    };
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
    if (!UUID.test(id)) throw notFound(`Token ${id} not found`);
    // The authority check is part of the delete, so a refusal removes nothing; the same statement
    // tells every replica to forget the token (delivered when it commits).
    const scoped = by && !isUnscopedOwner(by);
    const removed = await sql<{ id: string }>(this.orm,
      `with gone as (delete from api_tokens where id = ?${scoped ? ' and (id = ? or created_by = ?)' : ''} returning id)
       select id, ${notifySql('token', 'gone.id::text')} from gone`, scoped ? [id, by.tokenId, by.tokenId] : [id]);
    // This process forgets it at once, without waiting for its own notification.
    this.invalidation?.invalidate('token', id);
    if (!removed.length) {
      const existing = by ? await this.orm.em.fork().findOne(ApiToken, { id }) : null;
      if (existing && by && !mayManageToken(by, existing))
        throw forbidden(`${callerLabel(by)} may revoke only tokens it created, and itself; only an unscoped owner revokes others`);
      throw notFound(`Token ${id} not found`);
    }
    this.pendingUse.delete(id);
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
