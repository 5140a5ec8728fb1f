import { z } from 'zod';
import { actorOf, requireProjectAccess, type Principal } from '../../core/identity/principal.js';
import type { Services } from '../../container.js';
import { route } from '../route.js';
import { repositoryIdentifier } from './schemas.js';
import { readRoles } from '../../core/identity/roles.js';

const OWNER = ['owner'] as const;
const params = z.object({ cronName: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'not a schedule name') });

export function scheduleRoutes(s: Services) {
  /** A schedule of one project needs access to it; schedules for every project need an unscoped token. */
  const checked = async (p: Principal, name: string) => {
    const schedule = await s.schedules.get(name);
    requireProjectAccess(p, schedule.context.repositoryIdentifier ?? '(all projects)');
    return schedule;
  };
  return [
    route({
      method: 'get', path: '/schedules', roles: readRoles(['owner', 'member']), query: z.object({ repositoryIdentifier: repositoryIdentifier.optional() }),
      summary: 'List cron schedules', description: 'Each schedule with its expression, enabled state, next fire time and last run.',
      responses: { 200: 'List of cron schedules' },
      async handler({ principal, query }) {
        if (query.repositoryIdentifier) requireProjectAccess(principal, query.repositoryIdentifier);
        const schedules = await s.schedules.list(query.repositoryIdentifier, principal.projects);
        return { body: { schedules, count: schedules.length } };
      },
    }),
    ...(['pause', 'resume'] as const).map((verb) => route({
      method: 'post', path: `/schedules/{cronName}/${verb}`, roles: OWNER, params,
      summary: verb === 'pause' ? 'Pause a cron schedule' : 'Resume a paused cron schedule',
      responses: { 200: verb === 'pause' ? 'Cron schedule paused' : 'Cron schedule resumed', 404: 'Cron schedule not found' },
      async handler({ principal, params: p }) {
        await checked(principal, p.cronName);
        return { body: await s.schedules.setEnabled(p.cronName, verb === 'resume', actorOf(principal)) };
      },
    })),
    route({
      method: 'patch', path: '/schedules/{cronName}', roles: OWNER, params,
      body: z.object({ workflowName: z.string().min(1, 'required'), expression: z.string().min(1, 'required') }),
      summary: 'Update a cron schedule expression', description: 'The schedule keeps its input; only the expression changes.',
      responses: { 200: 'Cron schedule updated', 400: 'Invalid cron expression', 404: 'Cron schedule not found' },
      async handler({ principal, params: p, body }) {
        await checked(principal, p.cronName);
        return { body: await s.schedules.updateExpression(p.cronName, body.workflowName, body.expression, actorOf(principal)) };
      },
    }),
  ];
}
