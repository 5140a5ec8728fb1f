import { durableStep } from '../durable-step.js';
import type { StepKind } from './step-kind.js';
import { resolveInput } from './step-kind.js';

/** Posts a message to the run's thread (its callback destination). */
export const notifyStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'notify');
  const outcome = await durableStep(
    () => x.deps.notifier.notify(x.run.callback, {
      event: 'run.message', runId: x.run.id, taskType: x.run.taskType, repositoryIdentifier: x.run.repositoryIdentifier, message: input.message,
    }),
    { name: `${x.step.ref}.notify#${x.attempt}`, retriesAllowed: true, maxAttempts: 3, intervalSeconds: 1, backoffRate: 2 },
  );
  x.note(outcome.delivered ? 'info' : 'warn', outcome.delivered ? `Notified: ${input.message}` : `Not delivered (${outcome.reason}): ${input.message}`);
  return { delivered: outcome.delivered, message: input.message, ...(outcome.reason ? { reason: outcome.reason } : {}) };
};
