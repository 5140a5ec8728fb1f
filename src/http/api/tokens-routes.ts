import { z } from 'zod';
import { actorOf } from '../../core/identity/principal.js';
import { readRoles } from '../../core/identity/roles.js';
import { presentToken } from '../../core/identity/tokens.js';
import type { Services } from '../../container.js';
import { ROLES } from '../../db/entities/api-token.js';
import { route } from '../route.js';
import { repositoryIdentifier } from '../sfp/schemas.js';

// People's tokens manage tokens; what each may create, see and revoke is decided in TokenService.
const ISSUERS = ['owner', 'member'] as const;
const createBody = z.strictObject({
  name: z.string().trim().min(1, 'required').max(100),
  role: z.enum(ROLES),
  email: z.email().optional(),
  projects: z.array(repositoryIdentifier).optional(),
});

export function tokenRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/tokens', roles: ISSUERS, body: createBody,
      summary: 'Create an API token (the secret is returned only here)',
      description: 'A token creates only tokens of a role at most its own (owner > member > application > viewer; members not application) ' +
        'and projects within its own; a project-scoped token must list them. Only an unscoped owner names any email; an owner a person of its projects; others their own.',
      responses: { 201: 'Token created', 400: 'Invalid body', 401: 'Missing or invalid token', 403: 'Beyond the calling token\'s role, projects or people' },
      async handler({ principal, body }) {
        const { token, secret } = await s.tokens.createBy(principal, body);
        return { status: 201, body: { ...presentToken(token), token: secret } };
      },
    }),
    route({
      method: 'get', path: '/tokens', roles: readRoles(ISSUERS), summary: 'List API tokens (never their secrets)',
      description: 'An unscoped owner sees every token; any other token the tokens it created, and itself.',
      responses: { 200: 'Tokens' },
      async handler({ principal }) {
        return { body: { tokens: (await s.tokens.list(principal)).map(presentToken) } };
      },
    }),
    route({
      method: 'delete', path: '/tokens/{id}', roles: ISSUERS, params: z.object({ id: z.uuid('must be a token id') }),
      summary: 'Revoke an API token', description: 'An unscoped owner revokes any token; any other token those it created, and itself.',
      responses: { 204: 'Revoked', 403: 'Not a token the caller created', 404: 'Unknown token' },
      async handler({ principal, params }) {
        await s.tokens.delete(params.id, actorOf(principal), principal);
        return { status: 204 };
      },
    }),
  ];
}
