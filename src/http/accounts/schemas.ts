import { z } from 'zod';
import { PASSWORD_MAX, PASSWORD_MIN } from '../../core/identity/passwords.js';
import { PLATFORM_ROLES } from '../../core/identity/platform-roles.js';
import { NAMESPACE } from '../../core/projects/projects.js';

/** Usernames are case-insensitive: kept in lower case. */
export const username = z.string().trim().toLowerCase().regex(/^[a-z0-9][a-z0-9._-]{2,63}$/, '3–64 of a-z 0-9 . _ -, starting with a letter or digit');
const password = z.string().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX, `at most ${PASSWORD_MAX} characters`);
const role = z.enum(PLATFORM_ROLES, { error: `one of ${PLATFORM_ROLES.join(', ')}` });
const email = z.email().toLowerCase();
const namespaces = z.array(z.string().regex(NAMESPACE, 'a namespace')).max(1000).transform((ns) => [...new Set(ns)]).nullable();

const notTheUsername = (name: string | undefined, pw: string | undefined, ctx: z.RefinementCtx) => {
  if (name && pw && pw.toLowerCase() === name.toLowerCase()) ctx.addIssue({ code: 'custom', path: ['password'], message: 'must not be the username' });
};

export const registerBody = z.strictObject({ username, password, role: role.optional(), email: email.nullable().optional(), namespaces: namespaces.optional() })
  .superRefine((b, ctx) => notTheUsername(b.username, b.password, ctx));

// Login takes any name: a name that could not exist is refused like any other (401), not described.
export const loginBody = z.strictObject({ username: z.string().max(256), password: z.string().max(PASSWORD_MAX * 4) });

export const updateBody = z.strictObject({ role: role.optional(), email: email.nullable().optional(), namespaces: namespaces.optional(), password: password.optional(), disabled: z.boolean().optional() });

export const userParams = z.object({ username });

const accountFields = {
  id: z.uuid(), username: z.string(), role: role, email: z.string().nullable(), namespaces: z.array(z.string()).nullable(),
};
export const accountSchema = z.object({ ...accountFields, disabled: z.boolean(), createdAt: z.string(), updatedAt: z.string(), lastLoginAt: z.string().nullable() });
export const loginSchema = z.object({ token: z.string(), expiresAt: z.string(), user: z.object(accountFields) });
