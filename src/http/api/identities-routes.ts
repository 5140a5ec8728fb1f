import { z } from 'zod';
import { presentIdentity } from '../../core/identity/directory.js';
import { actorOf } from '../../core/identity/principal.js';
import type { Services } from '../../container.js';
import { route } from '../route.js';

const OWNER = ['owner'] as const;
const params = z.object({ email: z.email() });
const body = z.strictObject({
  githubLogin: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, 'not a GitHub login').optional(),
  slackUserId: z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'not a Slack user id (U…/W…)').optional(),
  adoUniqueName: z.string().min(1).max(256).optional(),
});

/** The identity directory: one person's email and their GitHub, Slack and Azure DevOps identities. */
export function identityRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/identities', roles: OWNER, summary: 'List identities', responses: { 200: 'Identities' },
      async handler() {
        return { body: { identities: (await s.identities.list()).map(presentIdentity) } };
      },
    }),
    route({
      method: 'put', path: '/identities/{email}', roles: OWNER, params, body,
      summary: 'Link an email to chat identities', responses: { 200: 'Updated', 201: 'Created', 409: 'A chat identity belongs to someone else' },
      async handler({ principal, params: p, body: b }) {
        const { identity, created } = await s.identities.put(p.email, b, actorOf(principal));
        return { status: created ? 201 : 200, body: presentIdentity(identity) };
      },
    }),
    route({
      method: 'get', path: '/identities/{email}', roles: OWNER, params, summary: 'Get an identity', responses: { 200: 'Identity', 404: 'Unknown' },
      async handler({ params: p }) {
        return { body: presentIdentity(await s.identities.get(p.email)) };
      },
    }),
    route({
      method: 'delete', path: '/identities/{email}', roles: OWNER, params, summary: 'Delete an identity', responses: { 204: 'Deleted', 404: 'Unknown' },
      async handler({ principal, params: p }) {
        await s.identities.delete(p.email, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
