import { AsyncResource } from 'node:async_hooks';
import { DBOS } from '@dbos-inc/dbos-sdk';

// Created as this module loads, outside any workflow: its async scope carries no engine context.
const outside = new AsyncResource('flowgate.outside-workflow');

/**
 * Runs `fn` with no workflow context, as a REST request would: a workflow it starts is top-level
 * (never a child of whichever workflow happened to call), so starting it is not a checkpoint of
 * the caller and may happen at any time without upsetting the caller's replay.
 */
export function outsideWorkflow<T>(fn: () => Promise<T>): Promise<T> {
  return outside.runInAsyncScope(fn);
}

/**
 * A checkpointed step that calls the core services exactly as a REST request does. Core services
 * start durable workflows of their own (a run, an approval's thread update) with deterministic
 * ids; the engine refuses to start workflows inside a step, and calling the services in a door's
 * delivery workflow itself would repeat their writes on recovery. Outside the workflow's context
 * what they start is top-level, and the step records the outcome.
 */
export function coreStep<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return DBOS.runStep(() => outsideWorkflow(fn), { name });
}
