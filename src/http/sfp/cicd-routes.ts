import { z } from 'zod';
import type { Services } from '../../container.js';
import { actorOf } from '../../core/identity/principal.js';
import { route } from '../route.js';
import { idParams } from './schemas.js';

export const statusReportBody = z.object({
  status: z.enum(['running', 'completed', 'partial', 'failed', 'cancelled']),
  result: z.record(z.string(), z.unknown()).optional(),
  cicdRunId: z.string().min(1).max(500).optional(),
  cicdRunUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2000).optional(),
});

const statusResponse = z.object({ acknowledged: z.boolean(), id: z.string(), status: z.string() });

/** What CI/CD pipelines call: their execution token (or an application token) reports the run's status. */
export function cicdRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/executions/{id}/status', roles: ['application'], executionToken: true, params: idParams, body: statusReportBody,
      summary: 'Update task execution status (for CI/CD pipelines)',
      description: 'Reports the status of a cicd execution dispatched via POST /run. Accepts the execution token sent with the '
        + 'dispatch (for that execution only) or an application token. `result` is deep-merged into the execution\'s result. '
        + 'A finished execution acknowledges the same final status again without change and refuses another (409).',
      responses: {
        200: { description: 'Status updated (or the same final status acknowledged again)', schema: statusResponse },
        400: 'Invalid body, or not a cicd execution', 404: 'Execution not found', 409: 'The execution already ended with another status',
      },
      async handler({ principal, params, body }) {
        const run = await s.runs.get(params.id, principal);
        const { status } = await s.cicd.report(run, body, actorOf(principal));
        return { body: { acknowledged: true, id: run.id, status } };
      },
    }),
  ];
}
