import type { Role } from '../../db/entities/api-token.js';
import { forbidden } from '../../errors.js';
import { PLATFORM_ROLE_OF_TOKEN, type AccessRole, type PlatformRole } from './platform-roles.js';

/** The authenticated caller of an API route. */
export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
  email: string | null;
  /** Projects the caller may touch; null means all. */
  projects: string[] | null;
  /**
   * Set for a per-execution token: the one run it is bound to. Such a caller may only use routes
   * that opt in (`RouteSpec.executionToken`), and only for that run (see http/auth.ts).
   */
  runId?: string | null;
  /**
   * Set for an account (a JWT): its platform role, of which `role` is the core part (see
   * platform-roles.ts). `tokenId` is then the session's id, `name` the username.
   */
  platformRole?: PlatformRole;
  accountId?: string;
  /** An account's namespaces as the account has them (null: all); `projects` are their projects. */
  namespaces?: string[] | null;
}

/** How refusals name the caller: `Account "ana"` for an account's JWT, `Token "ci"` for a Flowgate token. */
export const callerLabel = (p: Pick<Principal, 'name' | 'accountId'>): string => `${p.accountId ? 'Account' : 'Token'} "${p.name}"`;

/** The caller's platform role: an account's own, a token's by its core role. */
export const platformRoleOf = (p: Principal): PlatformRole => p.platformRole ?? PLATFORM_ROLE_OF_TOKEN[p.role];

/** The one authorization check of a route's roles: the caller's core role or its platform role is listed. */
export const hasRole = (p: Principal, roles: readonly AccessRole[]): boolean => roles.includes(p.role) || roles.includes(platformRoleOf(p));

export function requireRole(p: Principal, roles: readonly AccessRole[]): void {
  if (!hasRole(p, roles)) throw forbidden(`Forbidden - Requires role: ${roles.join(', ')}`);
}

/** The only caller with authority over every token and the whole identity directory. */
export const isUnscopedOwner = (p: Principal): boolean => p.role === 'owner' && p.projects === null && !p.runId;

export function canAccessProject(p: Principal, repositoryIdentifier: string): boolean {
  return p.projects === null || p.projects.includes(repositoryIdentifier);
}

export function requireProjectAccess(p: Principal, repositoryIdentifier: string): void {
  if (!canAccessProject(p, repositoryIdentifier))
    throw forbidden(`${callerLabel(p)} is not allowed to access project ${repositoryIdentifier}`);
}

export const actorOf = (p: Principal, door = 'rest') => ({ name: p.email ?? `${p.accountId ? 'user' : 'token'}:${p.name}`, door });
