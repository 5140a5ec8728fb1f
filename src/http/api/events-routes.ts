import { z } from 'zod';
import { actorOf } from '../../core/identity/principal.js';
import { stepWorkflowId } from '../../core/runs/engine-port.js';
import type { Services } from '../../container.js';
import { conflict } from '../../errors.js';
import { eventTopic } from '../../engine/steps/wait-for-event.js';
import { route } from '../route.js';

const body = z.strictObject({
  event: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : -'),
  payload: z.unknown().optional(),
  /** Makes a retried delivery a no-op. */
  idempotencyKey: z.string().min(1).max(200).optional(),
});

/** Delivers an event to the step of a run that waits for it (`wait_for_event`). */
export function eventRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/runs/{id}/events', roles: ['owner', 'member', 'application'],
      params: z.object({ id: z.string().min(1) }), body,
      summary: 'Deliver an event to a run waiting for it',
      responses: { 202: 'Delivered to the waiting step (engine v2: recorded; the step that waits for it takes it)', 404: 'Unknown run', 409: 'No step of the run waits for this event, or the run has ended' },
      async handler({ principal, params, body: b }) {
        const run = await s.runs.get(params.id, principal);
        const actor = actorOf(principal);
        // A v2 run keeps every event until a step takes it: one that comes before the step waits is not lost.
        const v2 = await s.store.recordRunEvent(run.id, { event: b.event, payload: b.payload ?? null, sentBy: actor.name, idempotencyKey: b.idempotencyKey });
        if (v2) {
          if (v2.ended && !v2.duplicate) throw conflict(`Run ${run.id} has ended (${v2.ended}): it takes no more events`);
          const waiting = await s.store.findWaitingStep(run.id, eventTopic(b.event));
          if (v2.recorded) {
            s.executor?.wake();
            await s.audit.record(actor, 'run.event_delivered', 'run', run.id, { event: b.event, step: waiting?.stepRef ?? null });
          }
          return { status: 202, body: { runId: run.id, step: waiting?.stepRef ?? null, event: b.event, delivered: true, duplicate: v2.duplicate } };
        }
        const step = await s.store.findWaitingStep(run.id, eventTopic(b.event));
        if (!step) throw conflict(`No step of run ${run.id} is waiting for event "${b.event}"`);
        await s.engine.send(step.workflowId ?? stepWorkflowId(run.engineRunId, step.stepRef), eventTopic(b.event), { payload: b.payload ?? null, sentBy: actor.name }, b.idempotencyKey);
        await s.audit.record(actor, 'run.event_delivered', 'run', run.id, { event: b.event, step: step.stepRef });
        return { status: 202, body: { runId: run.id, step: step.stepRef, event: b.event, delivered: true } };
      },
    }),
  ];
}
