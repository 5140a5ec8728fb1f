import type { Services } from '../../container.js';
import { AppError, engineUnavailable } from '../../errors.js';
import { route } from '../route.js';
import { presentRun, presentStepRun } from './present.js';
import { visibleRun } from './visible-run.js';
import { bulkBody, forceCompleteBody, runParams, runSchema, skipBody, stepParams } from './schemas.js';

const CONTROL = ['owner', 'member', 'application'] as const;

/** Pause, resume, retry and the step controls: each is `RunControl`, the one core service every API and door uses. */
export function controlRoutes(s: Services) {
  const who = (principal: import('../../core/identity/principal.js').Principal) => ({ principal, door: 'rest' });
  const requireEngine = () => {
    if (!s.engine.isRunning()) throw engineUnavailable('Flow engine is not running');
  };
  return [
    route({
      method: 'post', path: '/bulk-replay', roles: CONTROL, body: bulkBody,
      summary: 'Bulk replay workflow runs',
      description: 'Retries each ended run as `POST /v1/workflow-runs/{workflowRunID}/retry` does; one that cannot be (not found, not ended, not allowed) is counted in `failed` with its reason in `results`.',
      responses: { 200: 'Counts and one result per run (`original_run_id`, `new_run_id`, `status`, `error`)', 422: 'Invalid body', 503: 'Flow engine unavailable' },
      async handler({ principal, body }) {
        requireEngine();
        const results: { original_run_id: string; new_run_id: string | null; status: 'replayed' | 'failed'; error: string | null }[] = [];
        for (const id of new Set(body.workflow_run_ids)) {
          try {
            const retry = await s.control.retryRun(await visibleRun(s, id, principal), who(principal));
            results.push({ original_run_id: id, new_run_id: retry.id, status: 'replayed', error: null });
          } catch (err) {
            // A run that cannot be retried is this run's outcome; anything unexpected stops the batch.
            if (!(err instanceof AppError) || err.code === 'engine_unavailable') throw err;
            results.push({ original_run_id: id, new_run_id: null, status: 'failed', error: err.message });
          }
        }
        const replayed = results.filter((r) => r.status === 'replayed').length;
        return { body: { replayed, failed: results.length - replayed, results } };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/pause', roles: CONTROL, params: runParams,
      summary: 'Pause a workflow run',
      description: 'Running steps finish; nothing new starts until the run is resumed. Pausing a paused run changes nothing. Timers (sleeps, approval expiry) are looked at again on resume; the run still times out while paused.',
      responses: { 200: { description: 'The workflow run', schema: runSchema }, 400: 'The run is not running (pending or ended)', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 409: 'The run is on the previous engine or in a CI/CD pipeline', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine();
        return { body: presentRun(await s.control.pause(await visibleRun(s, params.workflowRunID, principal), who(principal))) };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/resume', roles: CONTROL, params: runParams,
      summary: 'Resume a workflow run',
      responses: { 200: { description: 'The workflow run', schema: runSchema }, 400: 'The run is not paused', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 409: 'The run is on the previous engine', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine();
        return { body: presentRun(await s.control.resume(await visibleRun(s, params.workflowRunID, principal), who(principal))) };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/retry', roles: CONTROL, params: runParams,
      summary: 'Retry from first failed step',
      description: 'A new run of an ended one (`retry_of_run_id`, `triggered_by: "retry"`): the same definition, payload and step cap; the steps that completed are kept with their outputs, the rest run again.',
      responses: { 201: { description: 'The new workflow run', schema: runSchema }, 400: 'The run has not ended, or runs in a CI/CD pipeline', 403: 'Not allowed to control this run', 404: 'Workflow run not found', 503: 'Flow engine unavailable (or not Engine v2)' },
      async handler({ principal, params }) {
        requireEngine();
        const retry = await s.control.retryRun(await visibleRun(s, params.workflowRunID, principal), who(principal));
        return { status: 201, body: presentRun(retry) };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/skip', roles: CONTROL, params: stepParams, body: skipBody,
      summary: 'Skip a step',
      description: 'Only a pending or waiting step. Its dependents are released as by completion — except that skipping an approval step rejects its approval with the reason, and the steps it gates are skipped too.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has started running or ended, or the run has ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 422: 'Invalid body', 503: 'Flow engine unavailable' },
      async handler({ principal, params, body }) {
        requireEngine();
        const run = await visibleRun(s, params.workflowRunID, principal);
        const step = await s.control.skipStep(run, params.stepRef, body.reason ?? null, who(principal));
        return { body: { step_run: presentStepRun(step, run) } };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/force-complete', roles: CONTROL, params: stepParams, body: forceCompleteBody,
      summary: 'Force-complete a step',
      description: 'Only a pending or waiting step, and never an approval step (approve it, or skip it to reject it). The step completes with `result` as its output and its dependents are released.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has started running or ended, is an approval, or the run has ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 422: 'Invalid body', 503: 'Flow engine unavailable' },
      async handler({ principal, params, body }) {
        requireEngine();
        const run = await visibleRun(s, params.workflowRunID, principal);
        const step = await s.control.forceCompleteStep(run, params.stepRef, body.result ?? null, who(principal));
        return { body: { step_run: presentStepRun(step, run) } };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/retry', roles: CONTROL, params: stepParams,
      summary: 'Retry a single workflow step',
      description: 'Only an ended step. The step is set back to pending (its attempt history kept) and runs again; an ended run reopens and a paused one resumes. Steps that were skipped or cancelled because of it are decided again.',
      responses: { 200: 'The step run: `{step_run}`', 400: 'The step has not ended', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is on the previous engine, or is busy with another control action', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine();
        const run = await visibleRun(s, params.workflowRunID, principal);
        const step = await s.control.retryStep(run, params.stepRef, who(principal));
        return { body: { step_run: presentStepRun(step, run) } };
      },
    }),
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/replay-subtree', roles: CONTROL, params: stepParams,
      summary: 'Replay a step and everything downstream of it',
      description: 'The run must be paused (or ended, which reopens it); checked before anything changes. The step and its descendants go back to pending and the run resumes. `reset_steps` counts the subtree.',
      responses: { 200: '`{reset_steps}`', 403: 'Not allowed to control this run', 404: 'Workflow run or step not found', 409: 'The run is neither paused nor ended, is on the previous engine, or is busy with another control action', 503: 'Flow engine unavailable' },
      async handler({ principal, params }) {
        requireEngine();
        const run = await visibleRun(s, params.workflowRunID, principal);
        return { body: { reset_steps: await s.control.replaySubtree(run, params.stepRef, who(principal)) } };
      },
    }),
  ];
}
