import { step as deliveryStep } from '../inbound.js';

/** GitHub calls that may be repeated safely (a comment is posted once the step succeeds). */
const RETRY = { attempts: 3, intervalMs: 500, backoff: 2 } as const;

/** A recorded step of a delivery: processed again after a crash, its result is returned, not run again. */
export function step<T>(name: string, fn: () => Promise<T>, retry = false): Promise<T> {
  return deliveryStep(name, fn, retry ? RETRY : undefined);
}
