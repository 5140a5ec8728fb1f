import { actorOf, requireProjectAccess } from '../../core/identity/principal.js';
import { presentLogLine } from '../../core/logs/run-logs.js';
import { listRuns, parseSince } from '../../core/runs/run-query.js';
import { startedByOf } from '../../core/runs/run-permissions.js';
import type { Services } from '../../container.js';
import { badRequest, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { presentRunDetail, presentRunSummary, sfpStatus } from './present.js';
import { idParams, listRunsQuery, rerunBody, taskRunBody } from './schemas.js';
import { READ_ROLES } from '../../core/identity/roles.js';

const ALL = ['owner', 'member', 'application'] as const;
const triggeredByOf = startedByOf;

export function runRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/run', roles: ALL, body: taskRunBody,
      summary: 'Run a flow using the registry-based system',
      responses: { 201: 'Flow started successfully', 400: 'Invalid payload or unknown flow type', 403: 'Forbidden - Requires role: owner, member, application', 503: 'Flow engine unavailable' },
      async handler({ principal, body }) {
        requireProjectAccess(principal, body.payload.repositoryIdentifier);
        const { repositoryIdentifier, ...payload } = body.payload;
        const run = await s.runs.start({
          payload, repositoryIdentifier, triggeredBy: triggeredByOf(principal), callback: body.callback ?? null, tags: body.tags,
        }, actorOf(principal));
        return { status: 201, body: {
          id: run.id, engineRunId: run.engineRunId, taskType: run.taskType, requestedTaskType: run.requestedTaskType ?? undefined,
          status: sfpStatus(run.status), triggeredAt: run.createdAt.toISOString(),
        } };
      },
    }),
    route({
      method: 'get', path: '/runs', roles: READ_ROLES, query: listRunsQuery,
      summary: 'List recent task executions',
      responses: { 200: 'List of task executions', 403: 'Forbidden - Requires role: owner, member, application' },
      async handler({ principal, query }) {
        requireProjectAccess(principal, query.repositoryIdentifier);
        let since: Date | undefined;
        if (query.since) {
          since = parseSince(query.since);
          if (!since) throw validationFailed([{ field: 'since', message: 'must be ISO-8601 (2024-01-15T00:00:00Z) or relative (30m, 24h, 7d)', location: 'query' }]);
        }
        const { runs, total, estimated } = await listRuns(s.orm, { ...query, since });
        return { body: { runs: runs.map(presentRunSummary), count: runs.length, totalCount: total, page: query.page, ...(estimated ? { totalCountIsEstimate: true } : {}) } };
      },
    }),
  ];
}

/** Routes under `/{id}`: registered after every static path. */
export function runByIdRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/{id}/children', roles: READ_ROLES, params: idParams,
      summary: 'Get child executions for an orchestrator flow',
      responses: { 200: 'List of child executions', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await s.runs.get(params.id, principal);
        const children = await s.store.children(run.id);
        return { body: { parentExecutionId: run.id, children: children.map(presentRunSummary), count: children.length } };
      },
    }),
    route({
      method: 'post', path: '/{id}/cancel-children', roles: ALL, params: idParams,
      summary: 'Cancel only child executions (not the parent)',
      responses: { 200: 'Children cancelled', 403: 'Not allowed to cancel this execution', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await s.runs.get(params.id, principal);
        const cancelled = await s.runs.cancelChildren(run, { principal, door: 'rest' });
        return { body: { parentExecutionId: run.id, cancelledExecutionIds: cancelled, count: cancelled.length } };
      },
    }),
    route({
      method: 'post', path: '/{id}/rerun', roles: ALL, params: idParams, body: rerunBody,
      summary: 'Rerun a completed/failed execution with optional payload overrides',
      responses: { 201: 'New execution created', 400: 'Execution cannot be rerun', 403: 'Not allowed to rerun this execution', 404: 'Execution not found' },
      async handler({ principal, params, body }) {
        const original = await s.runs.get(params.id, principal);
        const run = await s.runs.rerun(original, body.payloadOverrides, { principal, door: 'rest' });
        return { status: 201, body: {
          id: run.id, taskType: run.taskType, status: sfpStatus(run.status), triggeredAt: run.createdAt.toISOString(),
          rerunOfExecutionId: original.id, parentExecutionId: run.parentRunId ?? undefined,
        } };
      },
    }),
    route({
      method: 'get', path: '/{id}/logs', roles: READ_ROLES, params: idParams,
      summary: 'Get execution logs',
      responses: { 200: 'Execution logs', 400: 'Logs only available for flow executions', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await s.runs.get(params.id, principal);
        if (run.executionMode !== 'flow') throw badRequest('Logs only available for flow executions');
        const [lines, children] = await Promise.all([s.logs.list(run.id), s.store.children(run.id)]);
        const body: Record<string, unknown> = { id: run.id, status: sfpStatus(run.status), logs: lines.map(presentLogLine), nextOffset: lines.at(-1)?.seq ?? 0 };
        if (children.length) {
          const childLines = await s.logs.listForRuns(children.map((c) => c.id));
          body.children = children.map((c) => ({
            id: c.id, taskType: c.taskType, status: sfpStatus(c.status),
            logs: childLines.filter((l) => l.runId === c.id).map(presentLogLine),
          }));
        }
        return { body };
      },
    }),
    route({
      method: 'post', path: '/{id}/cancel', roles: ALL, params: idParams,
      summary: 'Cancel a running or suspended execution',
      responses: { 200: 'Execution cancelled', 400: 'Execution already completed', 403: 'Not allowed to cancel this execution', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await s.runs.get(params.id, principal);
        const cancelled = await s.runs.cancel(run, { principal, door: 'rest' });
        return { body: { id: run.id, status: 'Cancelled', cancelledExecutionIds: cancelled } };
      },
    }),
    route({
      method: 'get', path: '/{id}', roles: READ_ROLES, params: idParams,
      summary: 'Get execution details by ID',
      responses: { 200: 'Execution details with status', 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await s.runs.get(params.id, principal);
        const [steps, children, locks] = await Promise.all([s.store.steps(run.id), s.store.children(run.id), s.locks.forRun(run.id)]);
        return { body: { ...presentRunDetail(run, steps, children), locks: locks.map((l) => ({ lockKey: l.lockKey, acquiredAt: l.acquiredAt.toISOString() })) } };
      },
    }),
  ];
}
