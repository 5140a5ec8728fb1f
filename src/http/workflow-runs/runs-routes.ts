import type { Context } from 'koa';
import type { Services } from '../../container.js';
import { canAccessProject } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { pageRuns, runsInOrder } from '../../core/runs/run-page-query.js';
import { badRequest, notFound } from '../../errors.js';
import { route } from '../route.js';
import { presentRun, presentStepRun, RUN_STATES } from './present.js';
import { CONTROL_ROLES, eachVisibleRun, requireEngine, visibleRun } from './visible-run.js';
import { bulkBody, encodeCursor, listQuery, runParams, runSchema, stepRunSchema } from './schemas.js';


/** The `Link` to the next page: this request's query with the next cursor. */
function nextLink(ctx: Context, cursor: string): string {
  const q = new URLSearchParams(ctx.querystring);
  q.set('cursor', cursor);
  return `<${ctx.path}?${q.toString()}>; rel="next"`;
}

/** Static paths first (`/bulk-cancel`), then `/{workflowRunID}`. */
export function workflowRunRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '', roles: READ_ROLES, query: listQuery,
      summary: 'List workflow runs',
      description: 'Newest first. A bare array; when more runs follow, the `X-Next-Cursor` header holds the `cursor` of the next page and `Link` its URL (rel="next").',
      responses: { 200: { description: 'Workflow runs', schema: runSchema.array() }, 400: '`tag_value` without `tag_key`', 404: 'Project not found', 422: 'Invalid query parameter' },
      async handler({ principal, query, ctx }) {
        if (query.tag_value !== undefined && query.tag_key === undefined)
          throw badRequest('tag_value requires tag_key', [{ field: 'tag_value', message: 'given without tag_key', location: 'query' }]);
        if (!canAccessProject(principal, query.project_id)) throw notFound(`Project ${query.project_id} not found`);
        const { ids, next } = await pageRuns(s.orm, {
          repositoryIdentifier: query.project_id, statuses: query.status ? RUN_STATES[query.status] : undefined,
          tagKey: query.tag_key, tagValue: query.tag_value, limit: query.limit, after: query.cursor,
        });
        const runs = await runsInOrder(s.orm, ids);
        const cursor = next ? encodeCursor(next) : null;
        return { body: runs.map(presentRun), headers: cursor ? { 'X-Next-Cursor': cursor, Link: nextLink(ctx, cursor) } : undefined };
      },
    }),
    route({
      method: 'post', path: '/bulk-cancel', roles: CONTROL_ROLES, body: bulkBody,
      summary: 'Bulk cancel workflow runs',
      description: 'Each run is cancelled as by `DELETE /v1/workflow-runs/{workflowRunID}`; one that cannot be (not found, already ended, not allowed) is counted in `failed` with its reason in `results`.',
      responses: { 200: 'Counts, the cancelled ids and one result per run', 422: 'Invalid body', 503: 'Flow engine unavailable' },
      async handler({ principal, body }) {
        requireEngine(s);
        const outcomes = await eachVisibleRun(s, body.workflow_run_ids, principal, (run) => s.runs.cancel(run, { principal, door: 'rest' }));
        const results = outcomes.map((o) => ({ workflow_run_id: o.id, status: o.error ? 'failed' as const : 'canceled' as const, error: o.error?.message ?? null }));
        const canceled = results.filter((r) => r.status === 'canceled').map((r) => r.workflow_run_id);
        return { body: { canceled: canceled.length, failed: results.length - canceled.length, workflow_run_ids: canceled, results } };
      },
    }),
    route({
      method: 'get', path: '/{workflowRunID}', roles: READ_ROLES, params: runParams,
      summary: 'Get a workflow run',
      responses: { 200: { description: 'The workflow run', schema: runSchema }, 404: 'Workflow run not found' },
      async handler({ principal, params }) {
        return { body: presentRun(await visibleRun(s, params.workflowRunID, principal)) };
      },
    }),
    route({
      method: 'delete', path: '/{workflowRunID}', roles: CONTROL_ROLES, params: runParams,
      summary: 'Cancel a workflow run',
      description: 'Cancels the run, its unfinished steps, its pending approvals and event waits, and the runs it started.',
      responses: { 204: 'Cancelled', 400: 'The run has already ended', 403: 'Not allowed to cancel this run', 404: 'Workflow run not found', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        await s.runs.cancel(await visibleRun(s, params.workflowRunID, principal), { principal, door: 'rest' });
        return { status: 204 };
      },
    }),
    route({
      method: 'get', path: '/{workflowRunID}/steps', roles: READ_ROLES, params: runParams,
      summary: 'List step runs',
      description: 'The steps that have started or ended (a step that has not started yet has no step run).',
      responses: { 200: { description: 'Step runs', schema: stepRunSchema.array() }, 404: 'Workflow run not found' },
      async handler({ principal, params }) {
        const run = await visibleRun(s, params.workflowRunID, principal);
        const steps = await s.store.steps(run.id);
        return { body: steps.map((st) => presentStepRun(st, run)) };
      },
    }),
  ];
}
