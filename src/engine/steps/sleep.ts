import { DBOS } from '@dbos-inc/dbos-sdk';
import { StepFailure } from '../step-failure.js';
import type { StepKind } from './step-kind.js';
import { remainingMs, resolveInput, stepLog } from './step-kind.js';

/** A durable sleep: after a restart the run wakes at the original time, not later. */
export const sleepStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'sleep');
  const now = await DBOS.now();
  const until = input.until ? Date.parse(input.until) : now + (input.seconds ?? (input.minutes ?? 0) * 60) * 1000;
  const duration = Math.max(0, until - now);
  const left = await remainingMs(x);
  await stepLog(x, 'info', `Sleeping until ${new Date(until).toISOString()}`, 'start');
  if (duration > left) {
    await DBOS.sleep(Math.max(0, left));
    throw new StepFailure(`step timed out after ${x.step.timeout}s while sleeping`);
  }
  await DBOS.sleep(duration);
  return { sleptMs: duration, until: new Date(until).toISOString() };
};
