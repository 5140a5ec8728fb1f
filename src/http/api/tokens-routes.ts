import { z } from 'zod';
import { actorOf } from '../../core/identity/principal.js';
import { presentToken } from '../../core/identity/tokens.js';
import type { Services } from '../../container.js';
import { ROLES } from '../../db/entities/api-token.js';
import { route } from '../route.js';
import { repositoryIdentifier } from '../sfp/schemas.js';

const OWNER = ['owner'] as const;
const createBody = z.strictObject({
  name: z.string().trim().min(1, 'required').max(100),
  role: z.enum(ROLES),
  email: z.email().optional(),
  projects: z.array(repositoryIdentifier).optional(),
});

export function tokenRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/tokens', roles: OWNER, body: createBody,
      summary: 'Create an API token (the secret is returned only here)',
      responses: { 201: 'Token created', 400: 'Invalid body', 401: 'Missing or invalid token', 403: 'Requires role: owner' },
      async handler({ principal, body }) {
        const { token, secret } = await s.tokens.create(body, actorOf(principal));
        return { status: 201, body: { ...presentToken(token), token: secret } };
      },
    }),
    route({
      method: 'get', path: '/tokens', roles: OWNER, summary: 'List API tokens (never their secrets)',
      responses: { 200: 'Tokens' },
      async handler() {
        return { body: { tokens: (await s.tokens.list()).map(presentToken) } };
      },
    }),
    route({
      method: 'delete', path: '/tokens/{id}', roles: OWNER, params: z.object({ id: z.uuid('must be a token id') }),
      summary: 'Revoke an API token', responses: { 204: 'Revoked', 404: 'Unknown token' },
      async handler({ principal, params }) {
        await s.tokens.delete(params.id, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
