import { z } from 'zod';
import { actorOf, canAccessProject, requireProjectAccess } from '../../core/identity/principal.js';
import { readRoles } from '../../core/identity/roles.js';
import type { Services } from '../../container.js';
import { notFound } from '../../errors.js';
import { route } from '../route.js';
import { repositoryIdentifier } from '../sfp/schemas.js';

const OWNER = ['owner'] as const;
const READERS = readRoles(['owner', 'member']);
const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes (at most 63)');

/**
 * Cron schedules: a project adds and deletes its own here (manifest schedules come with their flow
 * types, cron triggers' `trigger-<id>` ones with their triggers); all of them are read here.
 */
export function projectScheduleRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/schedules', roles: READERS, query: z.strictObject({ repositoryIdentifier: repositoryIdentifier.optional() }),
      summary: 'List cron schedules',
      description: 'Manifest, API and cron-trigger schedules of the projects the token may see (and those of every project), by name: '
        + 'each with its flow type, expression, time zone, enabled state, next fire time and last run.',
      responses: { 200: '`{schedules}`', 403: 'The token may not see that project' },
      async handler({ principal, query }) {
        if (query.repositoryIdentifier) requireProjectAccess(principal, query.repositoryIdentifier);
        return { body: { schedules: await s.schedules.list(query.repositoryIdentifier, principal.projects) } };
      },
    }),
    route({
      method: 'get', path: '/schedules/{name}', roles: READERS, params: z.object({ name }),
      summary: 'Get a cron schedule', responses: { 200: 'The schedule', 404: 'Unknown, or of a project the token may not see' },
      async handler({ principal, params }) {
        const schedule = await s.schedules.get(params.name);
        const repo = schedule.context.repositoryIdentifier;
        // As the list shows it: a schedule of every project to all, another project's to no one (not even its name).
        if (repo && !canAccessProject(principal, repo)) throw notFound(`Cron schedule ${params.name} not found`);
        return { body: await s.schedules.view(schedule) };
      },
    }),
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
