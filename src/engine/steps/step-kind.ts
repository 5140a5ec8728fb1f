import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from '../durable-step.js';
import type { LogLevel } from '../../db/entities/log-line.js';
import type { StepDefinition, StepKindName } from '../../core/registry/manifest-schema.js';
import { stepInputs, type StepInput } from '../../core/registry/step-inputs.js';
import { expressionContext } from '../context.js';
import type { EngineDeps } from '../engine-deps.js';
import type { EngineRun } from '../engine-run.js';
import { StepFailure } from '../step-failure.js';
import { render } from '../templates.js';

/** Everything a step kind gets while it runs inside its step workflow. */
export interface StepExecution {
  deps: EngineDeps;
  run: EngineRun;
  step: StepDefinition;
  stepWorkflowId: string;
  attempt: number;
  /** Epoch ms at which the step times out, when it has a timeout. */
  deadline?: number;
}

/** A step kind runs in workflow context: I/O goes in DBOS steps, waits use durable DBOS primitives. */
export type StepKind = (x: StepExecution) => Promise<unknown>;

/** Parses rendered `with` values; a bad value fails the step naming the field. */
export function parseInput<K extends StepKindName>(kind: K, rendered: unknown): StepInput<K> {
  const parsed = stepInputs[kind].safeParse(rendered);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StepFailure(`invalid input for ${kind} step: ${why}`, false);
  }
  return parsed.data as StepInput<K>;
}

/** Renders and checks a step's `with` (credentials excluded) as one checkpointed step. */
export function resolveInput<K extends StepKindName>(x: StepExecution, kind: K): Promise<StepInput<K>> {
  return durableStep(async () => {
    const ctx = await expressionContext(x.deps, x.run);
    let rendered: unknown;
    try {
      rendered = render(x.step.with, ctx);
    } catch (err) {
      throw new StepFailure((err as Error).message, false);
    }
    return parseInput(kind, rendered);
  }, { name: `${x.step.ref}.resolve#${x.attempt}` });
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
