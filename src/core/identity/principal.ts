import type { Role } from '../../db/entities/api-token.js';
import { forbidden } from '../../errors.js';

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
}

export function requireRole(p: Principal, roles: readonly Role[]): void {
  if (!roles.includes(p.role)) throw forbidden(`Forbidden - Requires role: ${roles.join(', ')}`);
}

/** The only caller with authority over every token and the whole identity directory. */
export const isUnscopedOwner = (p: Principal): boolean => p.role === 'owner' && p.projects === null && !p.runId;

export function canAccessProject(p: Principal, repositoryIdentifier: string): boolean {
  return p.projects === null || p.projects.includes(repositoryIdentifier);
}

export function requireProjectAccess(p: Principal, repositoryIdentifier: string): void {
  if (!canAccessProject(p, repositoryIdentifier))
    throw forbidden(`Token "${p.name}" is not allowed to access project ${repositoryIdentifier}`);
}

export const actorOf = (p: Principal, door = 'rest') => ({ name: p.email ?? `token:${p.name}`, door });
