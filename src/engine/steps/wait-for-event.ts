import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from '../durable-step.js';
import { StepFailure } from '../step-failure.js';
import type { StepKind } from './step-kind.js';
import { remainingMs, resolveInput, stepLog } from './step-kind.js';

/** Without a timeout a step waits this long for its event. */
const DEFAULT_WAIT_SECONDS = 30 * 24 * 3600;

export const eventTopic = (event: string) => `event:${event}`;

/** Parks the step until `POST /api/v1/runs/{id}/events` delivers the named event. */
export const waitForEventStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'wait_for_event');
  const topic = eventTopic(input.event);
  const left = await remainingMs(x);
  const timeoutSeconds = Math.min(input.timeoutSeconds ?? DEFAULT_WAIT_SECONDS, left / 1000);
  await durableStep(async () => {
    await x.deps.store.stepWaiting(x.run.id, x.step.ref, topic, 'waiting', ['running', 'queued']);
  }, { name: `${x.step.ref}.park#${x.attempt}` });
  x.deps.runParked(x.run.id);
  await stepLog(x, 'info', `Waiting for event "${input.event}"`, 'wait');
  const message = await DBOS.recv<{ payload: unknown; sentBy: string }>(topic, { timeoutSeconds });
  await durableStep(async () => {
    await x.deps.store.stepWaiting(x.run.id, x.step.ref, null, 'running', ['waiting']);
  }, { name: `${x.step.ref}.unpark#${x.attempt}` });
  if (message === null) throw new StepFailure(`timed out after ${Math.round(timeoutSeconds)}s waiting for event "${input.event}"`);
  await stepLog(x, 'info', `Event "${input.event}" received from ${message.sentBy}`, 'received');
  return message.payload ?? null;
};
