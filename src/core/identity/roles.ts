import { ROLES, type Role } from '../../db/entities/api-token.js';

/**
 * Role order, highest first: owner > member > application > viewer (the order of `ROLES`).
 * A token may create only tokens whose role is at most its own.
 */
export const roleRank = (role: Role): number => ROLES.length - ROLES.indexOf(role);

export const roleAtMost = (role: Role, ceiling: Role): boolean => roleRank(role) <= roleRank(ceiling);

/** Who may read what `roles` may: the same roles and `viewer` (read-only: lists, gets, logs). */
export const readRoles = (roles: readonly Role[]): readonly Role[] => [...roles, 'viewer'];

/** Routes every token may read: runs, logs, approvals, flow types. */
export const READ_ROLES = readRoles(['owner', 'member', 'application']);
