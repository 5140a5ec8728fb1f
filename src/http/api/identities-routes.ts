import { z } from 'zod';
import { presentIdentity } from '../../core/identity/directory.js';
import { PersonScope } from '../../core/identity/person-scope.js';
import { actorOf } from '../../core/identity/principal.js';
import { readRoles } from '../../core/identity/roles.js';
import type { Services } from '../../container.js';
import { forbidden } from '../../errors.js';
import { route } from '../route.js';

const OWNER = ['owner'] as const;
const params = z.object({ email: z.email() });
const body = z.strictObject({
  githubLogin: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, 'not a GitHub login').optional(),
  githubUserId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  slackUserId: z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'not a Slack user id (U…/W…)').optional(),
  adoUniqueName: z.string().min(1).max(256).optional(),
});

/**
 * The identity directory: one person's email and their GitHub, Slack and Azure DevOps identities.
 * A project-scoped token sees and (owners) changes only people of its projects (see PersonScope).
 */
export function identityRoutes(s: Services) {
  const people = new PersonScope(s.orm);
  return [
    route({
      method: 'get', path: '/identities', roles: readRoles(OWNER), summary: 'List identities', responses: { 200: 'Identities' },
      async handler({ principal }) {
        const visible = await people.visibleTo(principal);
        const identities = (await s.identities.list()).filter((i) => !visible || visible.has(i.email));
        return { body: { identities: identities.map(presentIdentity) } };
      },
    }),
    route({
      method: 'put', path: '/identities/{email}', roles: OWNER, params, body,
      summary: 'Link an email to chat identities',
      description: 'An unscoped owner links anyone; a project-scoped owner only people of its projects who are people of no other project.',
      responses: { 200: 'Updated', 201: 'Created', 403: 'Not a person of the token\'s projects', 409: 'A chat identity belongs to someone else' },
      async handler({ principal, params: p, body: b }) {
        await people.requireMayManage(principal, p.email);
        const { identity, created } = await s.identities.put(p.email, b, actorOf(principal));
        return { status: created ? 201 : 200, body: presentIdentity(identity) };
      },
    }),
    route({
      method: 'get', path: '/identities/{email}', roles: readRoles(OWNER), params, summary: 'Get an identity', responses: { 200: 'Identity', 403: 'Not a person of the token\'s projects', 404: 'Unknown' },
      async handler({ principal, params: p }) {
        const visible = await people.visibleTo(principal);
        if (visible && !visible.has(p.email.toLowerCase())) throw forbidden(`${p.email} is not an owner or member of any project of token "${principal.name}"`);
        return { body: presentIdentity(await s.identities.get(p.email)) };
      },
    }),
    route({
      method: 'delete', path: '/identities/{email}', roles: OWNER, params, summary: 'Delete an identity',
      responses: { 204: 'Deleted', 403: 'Not a person of the token\'s projects', 404: 'Unknown' },
      async handler({ principal, params: p }) {
        await people.requireMayManage(principal, p.email);
        await s.identities.delete(p.email, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
