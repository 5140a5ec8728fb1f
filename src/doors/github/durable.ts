import { AsyncResource } from 'node:async_hooks';
import { DBOS } from '@dbos-inc/dbos-sdk';

// Created as this module loads, outside any workflow: its async scope carries no engine context.
const outside = new AsyncResource('flowgate.github.outside-workflow');

/** GitHub calls that may be repeated safely (a comment is posted once the step succeeds). */
const RETRY = { retriesAllowed: true, maxAttempts: 3, intervalSeconds: 0.5, backoffRate: 2 } as const;

/** A checkpointed step of a delivery: after a crash its recorded result is returned, not run again. */
export function step<T>(name: string, fn: () => Promise<T>, retry = false): Promise<T> {
  return DBOS.runStep(fn, { name, ...(retry ? RETRY : {}) });
}

/**
 * A checkpointed step that calls the core services exactly as a REST request does. Core services
 * start durable workflows of their own (a run, an approval's thread update), with deterministic
 * ids; the engine refuses to start workflows inside a step, and calling the services in the
 * delivery workflow itself would repeat their writes on recovery. Run outside the workflow's
 * context, what they start is top-level (as for a REST request) and the step records the outcome.
 */
export function coreStep<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return DBOS.runStep(() => outside.runInAsyncScope(fn), { name });
}
