import type { AccessRole } from '../../core/identity/platform-roles.js';

/**
 * Platform writes (flows, triggers, namespace credentials, KV): editor and admin accounts, and
 * owner tokens (admins). Executor accounts and member tokens act as `member` too, so `editor`
 * (a platform role, see core/identity/platform-roles.ts) names who else may.
 */
export const EDIT_ROLES = ['owner', 'editor'] as const satisfies readonly AccessRole[];
/** Who may execute, cancel and retry (executors and above: core `member`/`owner`; application tokens act as executors). */
export const EXECUTE_ROLES = ['owner', 'member', 'application'] as const satisfies readonly AccessRole[];
