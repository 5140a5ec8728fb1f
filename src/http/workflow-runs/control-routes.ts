import type { z } from 'zod';
import type { Services } from '../../container.js';
import type { Principal } from '../../core/identity/principal.js';
import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import { route, type RouteSpec } from '../route.js';
import { presentRun, presentStepRun } from './present.js';
import { CONTROL_ROLES, eachVisibleRun, requireEngine, visibleRun } from './visible-run.js';
import { bulkBody, forceCompleteBody, runParams, runSchema, skipBody, stepParams } from './schemas.js';

const who = (principal: Principal) => ({ principal, door: 'rest' });

/** Pause, resume, retry and the step controls: each is `RunControl`, the one core service every API and door uses. */
export function controlRoutes(s: Services) {
  /** `POST /{id}/steps/{ref}/<action>` answering `{step_run}` as the action left it. */
  const stepRoute = <B>(action: string, spec: Pick<RouteSpec, 'summary' | 'description' | 'responses'> & { body?: z.ZodType<B> },
    act: (run: Run, ref: string, p: Principal, body: B) => Promise<StepRun>) => route({
    method: 'post', path: `/{workflowRunID}/steps/{stepRef}/${action}`, roles: CONTROL_ROLES, params: stepParams, ...spec,
    async handler({ principal, params, body }) {
      requireEngine(s);
      const run = await visibleRun(s, params.workflowRunID, principal);
      return { body: { step_run: presentStepRun(await act(run, params.stepRef, principal, body as B), run) } };
    },
  });
  return [
    route({
      method: 'post', path: '/bulk-replay', roles: CONTROL_ROLES, body: bulkBody,
      summary: 'Bulk replay workflow runs',
      description: 'Retries each ended run as `POST /v1/workflow-runs/{workflowRunID}/retry` does; one that cannot be (not found, not ended, not allowed) is counted in `failed` with its reason in `results`.',
      responses: { 200: 'Counts and one result per run (`original_run_id`, `new_run_id`, `status`, `error`)', 422: 'Invalid body', 503: 'Flow engine unavailable' },
      async handler({ principal, body }) {
        requireEngine(s);
        const outcomes = await eachVisibleRun(s, body.workflow_run_ids, principal, (run) => s.control.retryRun(run, who(principal)));
        // No engine to retry on (not Engine v2) is the service's answer, not each run's.
        const unavailable = outcomes.find((o) => o.error?.code === 'engine_unavailable');
        if (unavailable?.error) throw unavailable.error;
        const results = outcomes.map((o) => o.error
          ? { original_run_id: o.id, new_run_id: null, status: 'failed' as const, error: o.error.message }
          : { original_run_id: o.id, new_run_id: o.value.id, status: 'replayed' as const, error: null });
        const replayed = results.filter((r) => r.status === 'replayed').length;
        return { body: { replayed, failed: results.length - replayed, results } };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/pause', roles: CONTROL_ROLES, params: runParams,
      summary: 'Pause a workflow run',
      description: 'Running steps finish; nothing new starts until the run is resumed. Pausing a paused run changes nothing. Timers (sleeps, approval expiry) are looked at again on resume; the run still times out while paused.',
      responses: { 200: { description: 'The workflow run', schema: runSchema }, 400: 'The run is not running (pending or ended)', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 409: 'The run is on the previous engine or in a CI/CD pipeline', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine(s);
        return { body: presentRun(await s.control.pause(await visibleRun(s, params.workflowRunID, principal), who(principal))) };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/resume', roles: CONTROL_ROLES, params: runParams,
      summary: 'Resume a workflow run',
      responses: { 200: { description: 'The workflow run', schema: runSchema }, 400: 'The run is not paused', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 409: 'The run is on the previous engine', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine(s);
        return { body: presentRun(await s.control.resume(await visibleRun(s, params.workflowRunID, principal), who(principal))) };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/retry', roles: CONTROL_ROLES, params: runParams,
      summary: 'Retry from first failed step',
      description: 'A new run of an ended one (`retry_of_run_id`, `triggered_by: "retry"`): the same definition, payload and step cap; the steps that completed are kept with their outputs, the rest run again.',
      responses: { 201: { description: 'The new workflow run', schema: runSchema }, 400: 'The run has not ended, or runs in a CI/CD pipeline', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 503: 'Flow engine unavailable (or not Engine v2)' },
      async handler({ principal, params }) {
        requireEngine(s);
        const retry = await s.control.retryRun(await visibleRun(s, params.workflowRunID, principal), who(principal));
        return { status: 201, body: presentRun(retry) };
      },
    }),
    stepRoute('skip', {
      body: skipBody, summary: 'Skip a step',
      description: 'Only a pending or waiting step. Its dependents are released as by completion — except that skipping an approval step rejects its approval with the reason, and the steps it gates are skipped too.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has started running or ended, or the run has ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 422: 'Invalid body', 503: 'Flow engine unavailable' },
    }, (run, ref, p, body) => s.control.skipStep(run, ref, body.reason ?? null, who(p))),
    stepRoute('force-complete', {
      body: forceCompleteBody, summary: 'Force-complete a step',
      description: 'Only a pending or waiting step, and never an approval step (approve it, or skip it to reject it). The step completes with `result` as its output and its dependents are released.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has started running or ended, is an approval, or the run has ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 422: 'Invalid body', 503: 'Flow engine unavailable' },
    }, (run, ref, p, body) => s.control.forceCompleteStep(run, ref, body.result ?? null, who(p))),
    stepRoute('retry', {
      summary: 'Retry a single workflow step',
      description: 'Only an ended step. The step is set back to pending (its attempt history kept) and runs again; an ended run reopens and a paused one resumes. Steps that were skipped or cancelled because of it are decided again.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has not ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 503: 'Flow engine unavailable' },
    }, (run, ref, p) => s.control.retryStep(run, ref, who(p))),
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/replay-subtree', roles: CONTROL_ROLES, params: stepParams,
      summary: 'Replay a step and everything downstream of it',
      description: 'The run must be paused (or ended, which reopens it); checked before anything changes. The step and its descendants go back to pending and the run resumes. `reset_steps` counts the subtree.',
      responses: { 200: '`{reset_steps}`', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is neither paused nor ended, is on the previous engine, or is busy with another control action', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine(s);
        const run = await visibleRun(s, params.workflowRunID, principal);
        return { body: { reset_steps: await s.control.replaySubtree(run, params.stepRef, who(principal)) } };
      },
    }),
  ];
}
