import { z } from 'zod';
import { openLogArchive } from '../../core/logs/log-archive.js';
import { readLogStream } from '../../core/logs/log-stream.js';
import type { Services } from '../../container.js';
import type { Run } from '../../db/entities/run.js';
import type { Principal } from '../../core/identity/principal.js';
import { badRequest } from '../../errors.js';
import { route } from '../route.js';
import { sfpStatus } from './present.js';
import { idParams } from './schemas.js';
import { READ_ROLES } from '../../core/identity/roles.js';

const streamQuery = z.object({
  logOffset: z.string().max(16_000, 'too long: pass nextOffset back unchanged').optional(),
});

/** Following and downloading a run's log (with its child runs' logs). */
export function logRoutes(s: Services) {
  const flowRun = async (id: string, principal: Principal): Promise<Run> => {
    const run = await s.runs.get(id, principal);
    if (run.executionMode !== 'flow') throw badRequest('Logs only available for flow executions');
    return run;
  };
  return [
    route({
      method: 'get', path: '/{id}/logs/stream', roles: READ_ROLES, params: idParams, query: streamQuery,
      summary: 'Follow execution logs by offset',
      description: 'Lines after `logOffset` (child runs included, labelled by executionId and taskType), at most 1000 per response. '
        + 'Pass `nextOffset` back unchanged; `hasMore` = poll again at once; stop when `finished` is true.',
      responses: { 200: 'Log lines after the offset', 400: 'Bad logOffset, or not a flow execution', 404: 'Execution not found' },
      async handler({ principal, params, query }) {
        const run = await flowRun(params.id, principal);
        const page = await readLogStream(s.orm, run.id, query.logOffset);
        return { body: { id: run.id, ...page, status: sfpStatus(page.status) } };
      },
    }),
    route({
      method: 'get', path: '/{id}/logs/download', roles: READ_ROLES, params: idParams,
      summary: 'Download execution logs as a ZIP',
      description: '`console.log`, `<source>/<group>.log`, and one `<taskType>-<id>/` directory per child run with the same layout.',
      responses: { 200: 'application/zip', 400: 'Not a flow execution', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await flowRun(params.id, principal);
        const zip = await openLogArchive(s.orm, run.id, (err) => s.log.error({ err, runId: run.id }, 'log download failed'));
        return {
          body: zip.stream,
          headers: { 'content-type': 'application/zip', 'content-disposition': `attachment; filename="${zip.fileName}"` },
        };
      },
    }),
  ];
}
