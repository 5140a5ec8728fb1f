import { z } from 'zod';
import { actorOf, requireProjectAccess } from '../../core/identity/principal.js';
import type { Services } from '../../container.js';
import { route } from '../route.js';
import { repositoryIdentifier } from '../sfp/schemas.js';

const OWNER = ['owner'] as const;
const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes (at most 63)');

/** Schedules a project adds for itself (manifest schedules come with their flow types). */
export function projectScheduleRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/schedules', roles: OWNER,
      body: z.strictObject({
        name, flowType: z.string().min(1), cron: z.string().min(1), timezone: z.string().min(1).optional(), repositoryIdentifier,
        payload: z.record(z.string(), z.unknown()).default({}), enabled: z.boolean().default(true),
      }),
      summary: 'Add a cron schedule for a project', responses: { 201: 'Created', 400: 'Invalid schedule', 409: 'Name taken' },
      async handler({ principal, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        return { status: 201, body: await s.schedules.create(body, actorOf(principal)) };
      },
    }),
    route({
      method: 'delete', path: '/schedules/{name}', roles: OWNER, params: z.object({ name }),
      summary: 'Delete a schedule added through the API', responses: { 204: 'Deleted', 400: 'Declared in a manifest', 404: 'Unknown' },
      async handler({ principal, params }) {
        const schedule = await s.schedules.get(params.name);
        requireProjectAccess(principal, schedule.context.repositoryIdentifier ?? '(all projects)');
        await s.schedules.delete(params.name, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
