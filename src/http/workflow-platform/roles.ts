/** Platform editors: until accounts exist, Flowgate's owner tokens (the platform's admins and editors). */
export const EDIT_ROLES = ['owner'] as const;
/** Who may execute a flow (the platform's executors). */
export const EXECUTE_ROLES = ['owner', 'member', 'application'] as const;
