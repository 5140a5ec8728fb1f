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

const statusResponse = z.object({
  acknowledged: z.boolean(), id: z.string(), status: z.string(),
  pending: z.string().optional().describe('A final status held until the pipeline run concludes (GitHub Actions)'),
});

/** What CI/CD pipelines call: their execution token (or an application token) reports the run's status. */
export function cicdRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/executions/{id}/status', roles: ['application'], executionToken: true, params: idParams, body: statusReportBody,
      summary: 'Update task execution status (for CI/CD pipelines)',
      description: 'Reports the status of a cicd execution dispatched via POST /run. Accepts the execution token sent with the '
        + 'dispatch (for that execution only) or an application token. `result` is deep-merged into the execution\'s result. '
        + 'A finished execution acknowledges the same final status again without change and refuses another (409); its execution token '
        + 'ended with it and is refused any report (409). Reports of GitHub Actions runs are checked against the Actions API: the '
        + 'pipeline run (`cicdRunId`) must be a dispatch of the flow type\'s workflow made for this execution, and a final status must '
        + 'match its conclusion (403 otherwise). A final status sent before the pipeline run concluded is held (202, `pending`) until it has.',
      responses: {
        200: { description: 'Status updated (or the same final status acknowledged again)', schema: statusResponse },
        202: { description: 'Final status held until the pipeline run concludes', schema: statusResponse },
        400: 'Invalid body, or not a cicd execution', 403: 'The pipeline\'s own record contradicts the report', 404: 'Execution not found',
        409: 'The execution already ended (with another status, or the execution token ended with it)',
        503: 'The pipeline\'s record could not be read; nothing changed',
      },
      async handler({ principal, params, body }) {
        const run = await s.runs.get(params.id, principal);
        const { status, pending } = await s.cicd.report(run, body, actorOf(principal), { executionToken: Boolean(principal.runId) });
        return pending ? { status: 202, body: { acknowledged: true, id: run.id, status, pending } } : { body: { acknowledged: true, id: run.id, status } };
      },
    }),
  ];
}
