import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from '../durable-step.js';
import type { LogLevel } from '../../db/entities/log-line.js';
import type { StepDefinition, StepKindName } from '../../core/registry/manifest-schema.js';
import { InvalidStepInput, parseStepInput, type StepInput } from '../../core/registry/step-inputs.js';
import { expressionContext } from '../context.js';
import type { EngineDeps } from '../engine-deps.js';
import type { EngineRun } from '../engine-run.js';
import { StepFailure } from '../step-failure.js';
import { render } from '../../core/expressions/templates.js';

/** Everything a step kind gets while it runs inside its step workflow. */
export interface StepExecution {
  deps: EngineDeps;
  run: EngineRun;
  step: StepDefinition;
  stepWorkflowId: string;
  attempt: number;
  /** Epoch ms at which the step times out, when it has a timeout. */
  deadline?: number;
  /** The step's rendered input, checkpointed with its start (kinds that render their own have none). */
  resolved?: Resolution;
  /** Queues a log line written when the attempt ends (in the same checkpoint); for lines nobody needs sooner. */
  note(level: LogLevel, message: string): void;
}

/** A rendered and checked input, or why it could not be (serializable: it is checkpointed). */
export type Resolution = { input: unknown; error?: undefined } | { input?: undefined; error: string } | null;

/** Kinds whose input is rendered without credentials up front; the others render inside their own steps. */
const PRE_RESOLVED = new Set<StepKindName>(['log', 'notify', 'sleep', 'wait_for_event', 'approval']);

/** A step kind runs in workflow context: I/O goes in DBOS steps, waits use durable DBOS primitives. */
export type StepKind = (x: StepExecution) => Promise<unknown>;

/** Parses rendered `with` values; a bad value fails the step naming the field. */
export function parseInput<K extends StepKindName>(kind: K, rendered: unknown): StepInput<K> {
  try {
    return parseStepInput(kind, rendered);
  } catch (err) {
    // Bad input does not get better by trying again.
    throw err instanceof InvalidStepInput ? new StepFailure(err.message, false) : err;
  }
}

/** Renders and checks a step's `with` (credentials excluded); call inside a checkpointed step. */
export async function preResolve(x: StepExecution): Promise<Resolution> {
  if (!PRE_RESOLVED.has(x.step.type as StepKindName)) return null;
  // Reading the context may fail for want of a database: that is retried, not the step's input error.
  const ctx = await expressionContext(x.deps, x.run);
  try {
    return { input: parseInput(x.step.type as StepKindName, render(x.step.with, ctx)) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** The step's input as rendered at its start; a bad one fails the step, naming the field. */
export async function resolveInput<K extends StepKindName>(x: StepExecution, kind: K): Promise<StepInput<K>> {
  const resolved = x.resolved ?? (await durableStep(() => preResolve(x), { name: `${x.step.ref}.resolve#${x.attempt}` }));
  if (!resolved) throw new Error(`step kind ${kind} does not render its input up front`);
  if (resolved.error !== undefined) throw new StepFailure(resolved.error, false);
  return resolved.input as StepInput<K>;
}

/** Appends a line to the run's log as a checkpointed step (it is not written twice on replay). */
export function stepLog(x: StepExecution, level: LogLevel, message: string, name: string): Promise<void> {
  return durableStep(
    () => x.deps.logs.append(x.run.id, [{ level, source: `step:${x.step.ref}`, group: x.step.type, message }]),
    { name: `${x.step.ref}.log.${name}#${x.attempt}` },
  );
}

/** Milliseconds left before the step's deadline (Infinity without one). */
export async function remainingMs(x: StepExecution): Promise<number> {
  if (x.deadline === undefined) return Infinity;
  return x.deadline - (await DBOS.now());
}
