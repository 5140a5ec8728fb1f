import type { Services } from '../../container.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { listRunIds } from '../../core/runs/run-list-query.js';
import { runsInOrder } from '../../core/runs/run-page-query.js';
import { isTerminalRun, type RunStatus } from '../../core/status.js';
import type { Run } from '../../db/entities/run.js';
import { AppError, conflict, notFound, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { CONTROL_ROLES, requireEngine } from '../workflow-runs/visible-run.js';
import { executionDetail, presentExecutions, visibleExecution } from './executions.js';
import { coreStatusesOf, executionStatus, flowTypeOfFlowId, presentLogLine } from './present.js';
import { executionDetailSchema, executionParams, executionSchema, listQuery, logLineSchema, logsQuery, startedSchema } from './schemas.js';
import { triggerCondition } from './trigger.js';

/** The core statuses a retry starts from: FAILED, CANCELLED, TIMED_OUT, and a SUCCESS that was partial. */
const RETRYABLE: readonly RunStatus[] = ['failed', 'cancelled', 'timed_out', 'partial'];

const who = (principal: Principal) => ({ principal, door: 'rest' });

/** 409 with the execution's status as this API says it. */
const inState = (run: Run, message: string) => conflict(message, { status: executionStatus(run.status) });

/** A resume offset past the log's end names lines that do not exist. */
export function requireOffset(run: Run, offset: number): void {
  if (offset > run.logSeq) throw validationFailed([{ field: 'offset', message: `beyond the end of the log (${run.logSeq} lines so far)`, location: 'query' }]);
}

/** Executions: every run of every dialect and door, in the caller's namespaces. */
export function executionRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/executions', roles: READ_ROLES, query: listQuery,
      summary: 'List executions',
      description: 'Newest first, a bare array. `status` and `trigger` take comma-separated lists; `since` is RFC 3339 or a duration ago (`30m`, `24h`, `7d`); '
        + '`offset` ≤ 10,000 — page deeper with `before=<the last execution id of the previous page>`.',
      responses: { 200: { description: 'Executions', schema: executionSchema.array() }, 400: 'Invalid query parameter, or `before` names no execution you can see', 404: 'Namespace not found' },
      async handler({ principal, query }) {
        let projects = principal.projects;
        if (query.namespace !== undefined) {
          const project = await s.projects.byNamespace(query.namespace);
          if (!project || !canAccessProject(principal, project.repositoryIdentifier)) throw notFound(`Namespace ${query.namespace} not found`);
          projects = [project.repositoryIdentifier];
        }
        if (query.before !== undefined) {
          const before = await s.store.findById(query.before);
          if (!before || !canAccessProject(principal, before.repositoryIdentifier))
            throw validationFailed([{ field: 'before', message: `no execution ${query.before} (take the id of the last execution of the previous page)`, location: 'query' }]);
        }
        const ids = await listRunIds(s.orm, {
          projects, taskTypes: query.flowId !== undefined ? [flowTypeOfFlowId(query.flowId, s.registry)] : undefined, statuses: query.status ? coreStatusesOf(query.status) : undefined,
          since: query.since, beforeId: query.before, conditions: query.trigger ? [triggerCondition(query.trigger)] : [], offset: query.offset, limit: query.limit,
        });
        return { body: await presentExecutions(s, await runsInOrder(s.orm, ids)) };
      },
    }),
    route({
      method: 'get', path: '/executions/{id}', roles: READ_ROLES, params: executionParams,
      summary: 'Get an execution with its tasks',
      description: 'Every task in definition order; `outputs` is a JSON string, null until the task succeeded.',
      responses: { 200: { description: '`{execution, tasks}`', schema: executionDetailSchema }, 404: 'Execution not found' },
      async handler({ principal, params }) {
        const run = await visibleExecution(s, params.id, principal);
        return { body: await executionDetail(s, run.id) };
      },
    }),
    route({
      method: 'post', path: '/executions/{id}/cancel', roles: CONTROL_ROLES, params: executionParams,
      summary: 'Cancel an execution',
      description: 'Its unfinished tasks, pending approvals, child executions and pipeline are cancelled too (a flow that compensates ends once it has).',
      responses: { 200: { description: '`{execution, tasks}` after the cancel', schema: executionDetailSchema }, 403: 'Not allowed to cancel this execution', 404: 'Execution not found', 409: 'The execution has already ended (`status` says how)' },
      async handler({ principal, params }) {
        const run = await visibleExecution(s, params.id, principal);
        await s.runs.requireControl(run, who(principal), 'cancel');
        const ended = (r: Run) => inState(r, `execution is already ${executionStatus(r.status)}`);
        if (isTerminalRun(run.status)) throw ended(run);
        try {
          await s.runs.cancel(run, who(principal));
        } catch (err) {
          // It ended between the read and the cancel.
          const now = err instanceof AppError && err.code === 'bad_request' ? await s.store.findById(run.id) : null;
          if (now && isTerminalRun(now.status)) throw ended(now);
          throw err;
        }
        return { body: await executionDetail(s, run.id) };
      },
    }),
    route({
      method: 'post', path: '/executions/{id}/retry', roles: CONTROL_ROLES, params: executionParams,
      summary: 'Retry an execution',
      description: 'A new execution (trigger `retry`, `retryOf` this one) of the same definition snapshot, inputs and namespace: its successful tasks are kept with their outputs '
        + '(approved gates too), the rest run again. Only from FAILED, CANCELLED, TIMED_OUT or a partial SUCCESS.',
      responses: { 202: { description: 'The new execution, queued', schema: startedSchema }, 400: 'The execution runs in a CI/CD pipeline', 403: 'Not allowed to retry this execution', 404: 'Execution not found', 409: 'The execution cannot be retried in its status (`status` says it)', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine(s);
        const run = await visibleExecution(s, params.id, principal);
        await s.runs.requireControl(run, who(principal), 'retry');
        if (!RETRYABLE.includes(run.status))
          throw inState(run, `execution is ${executionStatus(run.status)}${run.status === 'completed' ? ' (all its tasks succeeded)' : ''}: only FAILED, CANCELLED, TIMED_OUT or partially successful executions can be retried`);
        const retry = await s.control.retryRun(run, who(principal));
        const [execution] = await presentExecutions(s, [retry]);
        return {
          status: 202,
          headers: { Location: `/api/v1/executions/${retry.id}` },
          body: { executionId: retry.id, status: 'QUEUED', tasksTotal: execution.tasksTotal, retryOf: run.id },
        };
      },
    }),
    route({
      method: 'get', path: '/executions/{id}/logs', roles: READ_ROLES, params: executionParams, query: logsQuery,
      summary: 'Execution logs: a WebSocket stream, or a page of lines as JSON',
      description: 'With `Upgrade: websocket` a live stream (subprotocol `flowgate.logs.v1`; browsers may pass the token as the subprotocol `bearer.<token>`): '
        + 'the lines after `offset`, new lines as they are written, `status` frames, a final `end` frame, then close 1000. '
        + 'Without it, up to `limit` lines after `offset` as a JSON array.',
      responses: { 101: 'Switching to the WebSocket stream', 200: { description: 'Lines after `offset`, oldest first', schema: logLineSchema.array() }, 400: 'Invalid offset or limit', 404: 'Execution not found', 429: 'Too many open log streams for this caller' },
      async handler({ principal, params, query }) {
        const run = await visibleExecution(s, params.id, principal);
        requireOffset(run, query.offset);
        return { body: (await s.logs.list(run.id, query.offset, query.limit)).map(presentLogLine) };
      },
    }),
  ];
}
