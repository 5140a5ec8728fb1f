import type { Services } from '../../container.js';
import { TRUSTED_ASSOCIATIONS } from './events.js';

/** Roles on a repository that may start, decide and cancel flows from GitHub: write and above. */
export const ACTING_ROLES: ReadonlySet<string> = new Set(['admin', 'maintain', 'write']);
const TTL_MS = 60_000;

/** Looks up a person's role on a repository (`GithubClient.roleOf`); throws when GitHub cannot tell. */
export type RoleLookup = (repositoryIdentifier: string, login: string, installationId?: number) => Promise<string>;

/**
 * Roles of people on repositories, cached per repository and GitHub user id for a minute: a
 * thread's burst of commands costs one API call, and a revoked permission stops working within
 * the minute. Failures are not cached.
 */
export class RepoPermissions {
  private readonly cache = new Map<string, { role: string; until: number }>();

  constructor(private readonly lookup: RoleLookup, private readonly ttlMs = TTL_MS, private readonly now: () => number = Date.now) {}

  async roleOf(repositoryIdentifier: string, login: string, userId: number, installationId?: number): Promise<string> {
    const key = `${repositoryIdentifier.toLowerCase()}:${userId}`;
    const known = this.cache.get(key);
    if (known && known.until > this.now()) return known.role;
    const role = await this.lookup(repositoryIdentifier, login, installationId);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { role, until: this.now() + this.ttlMs });
    return role;
  }
}

/** Who is asking, and where. */
export interface Asker {
  repositoryIdentifier: string;
  login: string;
  userId: number;
  installationId?: number;
  /** The sender's author association, when the event carries theirs (a `labeled` event does not). */
  association?: string;
}

/**
 * Whether the sender may `what` (e.g. "start flows") in the repository: a trusted association,
 * then write permission or above, read through the API. Fails closed: an API failure refuses.
 * Returns null when allowed, else the reason to reply; every refusal is audited.
 */
export async function refusalFor(s: Services, permissions: RepoPermissions, who: Asker, what: string, details: Record<string, unknown> = {}): Promise<string | null> {
  const refuse = async (text: string, why: Record<string, unknown>) => {
    await s.audit.record({ name: `github:${who.login}`, door: 'github' }, 'github.refused', 'project', who.repositoryIdentifier, {
      what, githubLogin: who.login, githubUserId: who.userId, ...why, ...details,
    });
    return text;
  };
  if (who.association !== undefined && !TRUSTED_ASSOCIATIONS.includes(who.association))
    return refuse(`only owners, members and collaborators of ${who.repositoryIdentifier} can ${what} here (your association: ${who.association.toLowerCase()}).`, { association: who.association });
  let role: string;
  try {
    role = await permissions.roleOf(who.repositoryIdentifier, who.login, who.userId, who.installationId);
  } catch (err) {
    return refuse(`Flowgate could not check your permission on ${who.repositoryIdentifier} (${(err as Error).message}), so nothing was done; comment again in a minute.`, { error: String((err as Error)?.message ?? err) });
  }
  if (ACTING_ROLES.has(role)) return null;
  return refuse(`only people with write access to ${who.repositoryIdentifier} can ${what} here (your permission: ${role}).`, { role });
}
