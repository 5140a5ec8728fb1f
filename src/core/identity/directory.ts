import type { MikroORM } from '@mikro-orm/postgresql';
import { Identity } from '../../db/entities/identity.js';
import { sql } from '../../db/sql.js';
import { notifySql, type CacheInvalidation } from '../cache/invalidation.js';
import { TtlCache } from '../cache/ttl-cache.js';
import { conflict, notFound } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';

export interface IdentityLinks {
  githubLogin?: string | null;
  /** Pins the entry to one GitHub account; without it, the first sender with the login is bound. */
  githubUserId?: number | null;
  slackUserId?: string | null;
  adoUniqueName?: string | null;
}

/**
 * The person a run or a decision names, as person numbers key them: an email (lowercased), or
 * `app:<token name>` for a token without one (what a token's runs record as their starter).
 * Anything else (`cron`, `retry`, `system`) is no person.
 */
export function personKey(who: string | null | undefined): string | null {
  if (!who) return null;
  if (who.startsWith('app:')) return who;
  return /^[^\s@]+@[^\s@]+$/.test(who) ? who.toLowerCase() : null;
}

/** The cache's only invalidation id: identity changes are rare, and any of them forgets every entry. */
const ALL = 'all';

/** What a link leads to (a door user's email, a person's GitHub login), or nothing (an answer worth keeping too). */
interface Linked { value: string | null }

/** The identity directory: every door resolves its user to one email through it. */
export class IdentityDirectory {
  /** Slack and Azure DevOps links and GitHub logins, read on every click and comment (see TtlCache for how stale they can be). */
  private readonly cache?: TtlCache<Linked>;
  private readonly invalidation?: CacheInvalidation;

  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog, cache?: { invalidation: CacheInvalidation; ttlMs: number }) {
    this.invalidation = cache?.invalidation;
    if (cache) this.cache = new TtlCache(cache.invalidation, { kind: 'identity', ttlMs: cache.ttlMs, idOf: () => ALL });
  }

  /** A link read through the cache, when there is one. */
  private async linked(key: string, read: () => Promise<string | undefined>): Promise<string | undefined> {
    const load = async (): Promise<Linked> => ({ value: (await read()) ?? null });
    const found = this.cache ? await this.cache.get(key, load) : await load();
    return found?.value ?? undefined;
  }

  /** After a change committed (and announced to the other replicas in its transaction): this process forgets at once. */
  private forget(): void {
    this.invalidation?.invalidate('identity', ALL);
  }

  list(): Promise<Identity[]> {
    return this.orm.em.fork().find(Identity, {}, { orderBy: { email: 'asc' } });
  }

  async get(email: string): Promise<Identity> {
    const found = await this.orm.em.fork().findOne(Identity, { email: email.toLowerCase() });
    if (!found) throw notFound(`No identity for ${email}`);
    return found;
  }

  async put(email: string, links: IdentityLinks, actor: Actor): Promise<{ identity: Identity; created: boolean }> {
    const key = email.toLowerCase();
    let created = false;
    let identity: Identity;
    try {
      identity = await this.orm.em.fork().transactional(async (em) => {
        let found = await em.findOne(Identity, { email: key });
        created = !found;
        if (!found) {
          found = Object.assign(new Identity(), { email: key });
          em.persist(found);
        }
        applyLinks(found, links);
        await em.flush();
        await em.getConnection().execute(`select ${notifySql('identity')}`, [ALL], 'all', em.getTransactionContext());
        return found;
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict('Another identity already uses that GitHub login or user id, Slack user id or Azure DevOps name');
      throw err;
    }
    this.forget();
    await this.audit.record(actor, created ? 'identity.created' : 'identity.updated', 'identity', key, { ...links, githubUserId: identity.githubUserId ?? null });
    return { identity, created };
  }

  async delete(email: string, actor: Actor): Promise<void> {
    const removed = await sql(this.orm, `with gone as (delete from identities where email = ? returning email) select ${notifySql('identity', '?')} from gone`, [email.toLowerCase(), ALL]);
    if (!removed.length) throw notFound(`No identity for ${email}`);
    this.forget();
    await this.audit.record(actor, 'identity.deleted', 'identity', email.toLowerCase());
  }

  /**
   * The email of a GitHub user, keyed by their numeric id: an entry bound to an id matches that id
   * only (and follows the user's renames); an entry with only a login matches that login once and
   * is bound to the sender's id then, so whoever registers the login after a rename is a stranger.
   */
  async emailByGithubUser(userId: number, login: string): Promise<string | undefined> {
    // No id (a delivery recorded before ids were kept), no person: never fall back to the login alone.
    if (!Number.isSafeInteger(userId) || userId <= 0) return undefined;
    const byId = async () => (await sql<{ email: string; github_login: string | null }>(this.orm,
      'select email, github_login from identities where github_user_id = ?', [userId], 'flowgate-identity-by-github-id'))[0];
    const actor: Actor = { name: `github:${login}`, door: 'github' };
    const known = await byId();
    if (known) {
      if (known.github_login?.toLowerCase() !== login.toLowerCase()) await this.followRename(known.email, known.github_login, login, userId, actor);
      return known.email;
    }
    let bound: { email: string }[] = [];
    try {
      // Conditional: of two first comments at once, one binds and the other finds the binding.
      bound = await sql<{ email: string }>(this.orm,
        'update identities set github_user_id = ?, updated_at = now() where lower(github_login) = lower(?) and github_user_id is null returning email', [userId, login]);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    if (bound[0]) {
      await this.audit.record(actor, 'identity.github_bound', 'identity', bound[0].email, { githubLogin: login, githubUserId: userId });
      return bound[0].email;
    }
    const raced = await byId();
    if (raced) return raced.email;
    const other = (await sql<{ email: string; github_user_id: string | null }>(this.orm,
      'select email, github_user_id from identities where lower(github_login) = lower(?)', [login]))[0];
    // The login belongs to an entry bound to another account: a renamed login taken over.
    if (other) await this.audit.record(actor, 'identity.github_refused', 'identity', other.email, { githubLogin: login, githubUserId: userId, boundTo: Number(other.github_user_id) });
    return undefined;
  }

  /** A bound person renamed on GitHub: the entry shows (and mentions) the new login, unless another entry holds it. */
  private async followRename(email: string, from: string | null, to: string, userId: number, actor: Actor): Promise<void> {
    try {
      // Other replicas forget their cached logins with this change, this one at once.
      await sql(this.orm, `with renamed as (update identities set github_login = ?, updated_at = now() where email = ? and github_user_id = ? returning email)
        select ${notifySql('identity', '?')} from renamed`, [to, email, userId, ALL]);
      this.forget();
      await this.audit.record(actor, 'identity.updated', 'identity', email, { githubLogin: to, previousGithubLogin: from, githubUserId: userId, reason: 'login renamed on GitHub' });
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
    }
  }

  /** By login alone, for callers that have no user id (the sfp users API). */
  async emailByGithub(login: string): Promise<string | undefined> {
    const rows = await sql<{ email: string }>(this.orm, 'select email from identities where lower(github_login) = lower(?)', [login]);
    return rows[0]?.email;
  }

  /** The GitHub login linked to a person, if any: GitHub comments mention people by it. */
  githubLoginOf(email: string): Promise<string | undefined> {
    return this.linked(`github-login:${email.toLowerCase()}`, async () =>
      (await sql<{ github_login: string | null }>(this.orm, 'select github_login from identities where email = ?', [email.toLowerCase()], 'flowgate-identity-github-login'))[0]?.github_login ?? undefined);
  }

  emailBySlack(userId: string): Promise<string | undefined> {
    return this.linked(`slack:${userId}`, async () => (await sql<{ email: string }>(this.orm, 'select email from identities where slack_user_id = ?', [userId]))[0]?.email);
  }

  /**
   * The stable integer id of each person (keys from `personKey`), given on first sight: APIs that
   * name people by number (the flow-runs API) show the same number for the same person everywhere.
   */
  async numbersOf(people: Iterable<string>): Promise<Map<string, number>> {
    const keys = [...new Set(people)].sort();
    const out = new Map<string, number>();
    if (!keys.length) return out;
    const rows = await sql<{ id: number; person: string }>(this.orm,
      `with given as (select unnest(?::text[]) as person),
         added as (insert into person_numbers (person) select person from given order by person on conflict (person) do nothing returning id, person)
       select id, person from added union all select n.id, n.person from person_numbers n join given g on g.person = n.person`, [keys]);
    for (const r of rows) out.set(r.person, r.id);
    // Numbered at the same moment by another statement: committed now, but not in this statement's snapshot.
    const missing = keys.filter((k) => !out.has(k));
    if (missing.length) {
      for (const r of await sql<{ id: number; person: string }>(this.orm, 'select id, person from person_numbers where person = any(?::text[])', [missing])) out.set(r.person, r.id);
    }
    return out;
  }

  emailByAdo(uniqueName: string): Promise<string | undefined> {
    return this.linked(`ado:${uniqueName.toLowerCase()}`, async () => (await sql<{ email: string }>(this.orm, 'select email from identities where lower(ado_unique_name) = lower(?)', [uniqueName]))[0]?.email);
  }
}

/** An edit's links on an entry. A binding learned from GitHub survives edits that keep the login; a new login starts unbound. */
function applyLinks(identity: Identity, links: IdentityLinks): void {
  const sameLogin = Boolean(identity.githubLogin && links.githubLogin && identity.githubLogin.toLowerCase() === links.githubLogin.toLowerCase());
  identity.githubUserId = links.githubUserId !== undefined ? links.githubUserId : sameLogin ? identity.githubUserId ?? null : null;
  identity.githubLogin = links.githubLogin ?? null;
  identity.slackUserId = links.slackUserId ?? null;
  identity.adoUniqueName = links.adoUniqueName ?? null;
  identity.updatedAt = new Date();
}

export const presentIdentity = (i: Identity) => ({
  email: i.email, githubLogin: i.githubLogin ?? null, githubUserId: i.githubUserId ?? null, slackUserId: i.slackUserId ?? null, adoUniqueName: i.adoUniqueName ?? null,
  updatedAt: i.updatedAt.toISOString(),
});
