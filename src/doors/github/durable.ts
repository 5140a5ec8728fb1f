import { DBOS } from '@dbos-inc/dbos-sdk';

/** GitHub calls that may be repeated safely (a comment is posted once the step succeeds). */
const RETRY = { retriesAllowed: true, maxAttempts: 3, intervalSeconds: 0.5, backoffRate: 2 } as const;

/** A checkpointed step of a delivery: after a crash its recorded result is returned, not run again. */
export function step<T>(name: string, fn: () => Promise<T>, retry = false): Promise<T> {
  return DBOS.runStep(fn, { name, ...(retry ? RETRY : {}) });
}

export { coreStep } from '../../engine/outside-workflow.js';
