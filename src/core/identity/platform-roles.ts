import type { Role } from '../../db/entities/api-token.js';

/** An account's role, lowest first: each may do what the one before it may, and more. */
export const PLATFORM_ROLES = ['viewer', 'executor', 'editor', 'admin'] as const;
export type PlatformRole = (typeof PLATFORM_ROLES)[number];

/** What a route may name in `roles`: the core roles, and the platform roles they do not express (an editor is a `member` that may write flows). */
export type AccessRole = Role | PlatformRole;

/** How an account acts in the core: editors are members whose platform writes are admitted by `editor` in a route's roles. */
export const CORE_ROLE: Record<PlatformRole, Role> = { viewer: 'viewer', executor: 'member', editor: 'member', admin: 'owner' };

/** How a Flowgate token acts on platform routes. */
export const PLATFORM_ROLE_OF_TOKEN: Record<Role, PlatformRole> = { owner: 'admin', member: 'executor', application: 'executor', viewer: 'viewer' };

export const platformRank = (role: PlatformRole): number => PLATFORM_ROLES.indexOf(role);

export const platformRoleAtMost = (role: PlatformRole, ceiling: PlatformRole): boolean => platformRank(role) <= platformRank(ceiling);
