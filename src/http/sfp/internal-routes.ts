import { z } from 'zod';
import { actorOf, requireProjectAccess } from '../../core/identity/principal.js';
import type { Services } from '../../container.js';
import { CATEGORIES } from '../../core/registry/manifest-schema.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import { route } from '../route.js';
import { repositoryIdentifier } from './schemas.js';

const APP = ['application'] as const;
const object = z.record(z.string(), z.unknown());

/** Endpoints for flows running in an external engine to report back (application tokens). */
export function internalRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/internal/register-child', roles: APP,
      body: z.object({
        parentTaskExecutionId: z.string().min(1, 'required'), hatchetRunId: z.string().min(1).optional(),
        taskType: z.string().min(1, 'required'), flowPath: z.string().min(1, 'required'), repositoryIdentifier,
        payload: object.optional(), triggeredBy: z.string().min(1).optional(), rerunOfExecutionId: z.string().min(1).optional(), rerunPayload: object.optional(),
      }),
      summary: 'Register a child flow execution (internal use)',
      responses: { 201: 'Child registered', 400: 'Parent does not exist' },
      async handler({ principal, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        const parent = await s.store.findByIdOrEngineId(body.parentTaskExecutionId);
        if (!parent) throw badRequest(`Parent execution ${body.parentTaskExecutionId} does not exist`, [{ field: 'parentTaskExecutionId', message: 'no such execution', location: 'body' }]);
        requireProjectAccess(principal, parent.repositoryIdentifier);
        const run = await s.externalRuns.register({
          engineRunId: body.hatchetRunId, taskType: body.taskType, flowPath: body.flowPath, repositoryIdentifier: body.repositoryIdentifier,
          payload: body.payload, triggeredBy: body.triggeredBy ?? parent.triggeredBy, parentRunId: parent.id,
          rerunOfExecutionId: body.rerunOfExecutionId, rerunPayload: body.rerunPayload,
        }, actorOf(principal));
        return { status: 201, body: { executionId: run.id } };
      },
    }),
    route({
      method: 'post', path: '/internal/register-scheduled', roles: APP,
      body: z.object({
        hatchetRunId: z.string().min(1, 'required'), taskType: z.string().min(1, 'required'), flowPath: z.string().min(1, 'required'),
        repositoryIdentifier, schedulePath: z.string().min(1, 'required'), category: z.enum(CATEGORIES).optional(),
        payload: object.optional(), rerunOfExecutionId: z.string().min(1).optional(),
      }),
      summary: 'Register a scheduled flow execution (internal use)',
      responses: { 201: 'Scheduled execution registered', 400: 'Invalid request' },
      async handler({ principal, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        const run = await s.externalRuns.register({ ...body, engineRunId: body.hatchetRunId, triggeredBy: 'cron' }, actorOf(principal));
        return { status: 201, body: { executionId: run.id } };
      },
    }),
    route({
      method: 'patch', path: '/internal/{id}/metadata', roles: APP, executionToken: true, params: z.object({ id: z.string().min(1) }),
      body: z.object({ result: object }),
      summary: 'Update execution metadata (internal use)', description: 'Deep-merges `result` into the execution\'s result. A finished execution\'s result is final (409 with `currentStatus`).',
      responses: { 200: 'Metadata updated', 404: 'Execution not found', 409: 'The execution has ended: its result is final' },
      async handler({ principal, params, body }) {
        const run = await s.runs.get(params.id, principal);
        const merged = await s.store.mergeResult(run.id, body.result);
        if (!merged) throw notFound(`Execution ${params.id} not found`);
        const actor = actorOf(principal);
        if ('ended' in merged) {
          await s.audit.record(actor, 'run.metadata_refused', 'run', run.id, { keys: Object.keys(body.result), currentStatus: merged.ended, executionToken: Boolean(principal.runId) });
          throw conflict(`Execution ${run.id} already ended ${merged.ended}; its metadata cannot change`, { currentStatus: merged.ended });
        }
        await s.audit.record(actor, 'run.metadata_updated', 'run', run.id, { keys: Object.keys(body.result) });
        return { body: { id: run.id, result: merged.result } };
      },
    }),
    route({
      method: 'post', path: '/internal/track-lock-run', roles: APP,
      body: z.object({ lockKey: z.string().min(1, 'required').max(300), runId: z.string().min(1, 'required') }),
      summary: 'Track a lock-to-workflow-run association (internal use)',
      description: 'Remembers which run holds a mutex. The lock is shown on the run and released by a scheduled cleanup once the run is finished or cancelled. `runId` is an execution id or engine run id.',
      responses: { 201: 'Lock run tracked', 404: 'Execution not found' },
      async handler({ principal, body }) {
        const run = await s.runs.get(body.runId, principal);
        const lock = await s.locks.track(body.lockKey, run.id, actorOf(principal));
        return { status: 201, body: { lockKey: lock.lockKey, runId: run.id, acquiredAt: lock.acquiredAt.toISOString() } };
      },
    }),
  ];
}
