import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from '../durable-step.js';
import { AppError } from '../../errors.js';
import { expressionContext } from '../context.js';
import type { RunOutcome } from '../run-outcome.js';
import { StepFailure, messageOf } from '../step-failure.js';
import { render } from '../../core/expressions/templates.js';
import type { StepKind } from './step-kind.js';
import { parseInput, remainingMs, stepLog } from './step-kind.js';

const DEFAULT_CHILD_WAIT_SECONDS = 30 * 24 * 3600;

interface ChildRef { id: string; engineRunId: string; taskType: string; item?: unknown }

/**
 * Starts child runs of another flow type and waits for them: one child, or one per item of
 * `forEach` (an orchestrator fanning out). Output is the child's result, or every child's.
 */
export function flowStep(runWorkflow: (runId: string) => Promise<RunOutcome>): StepKind {
  return async (x) => {
    const seeds = await durableStep(async () => {
      const ctx = await expressionContext(x.deps, x.run);
      const head = parseInput('flow', safeRender({ ...x.step.with, payload: {} }, ctx));
      const items = head.forEach ?? [undefined];
      return items.map((item) => ({ item, type: head.type, payload: parseInput('flow', safeRender({ type: head.type, payload: x.step.with.payload ?? {} }, { ...ctx, item })).payload }));
    }, { name: `${x.step.ref}.resolve#${x.attempt}` });
    const ids: string[] = [];
    for (let i = 0; i < seeds.length; i++) ids.push(await DBOS.randomUUID());

    const children = await durableStep(async (): Promise<ChildRef[]> => {
      const out: ChildRef[] = [];
      for (const [i, seed] of seeds.entries()) {
        try {
          const run = await x.deps.runs.prepare({
            id: ids[i], payload: { ...seed.payload, id: seed.type }, repositoryIdentifier: x.run.repositoryIdentifier,
            triggeredBy: x.run.triggeredBy, requestedBy: x.run.requestedBy, callback: x.run.callback, parentRunId: x.run.id,
          });
          await x.deps.store.insert(run).catch((err: { code?: string }) => { if (err.code !== '23505') throw err; });
          out.push({ id: run.id, engineRunId: run.engineRunId, taskType: run.taskType, ...(seed.item !== undefined ? { item: seed.item } : {}) });
        } catch (err) {
          if (err instanceof AppError) throw new StepFailure(`cannot start child flow ${seed.type}: ${err.message}${err.details.length ? ` (${err.details.map((d) => `${d.field}: ${d.message}`).join('; ')})` : ''}`, false);
          throw err;
        }
      }
      return out;
    }, { name: `${x.step.ref}.create-children#${x.attempt}` });

    for (const c of children) {
      await stepLog(x, 'info', `Started child run ${c.id} (${c.taskType}${c.item !== undefined ? ` for ${JSON.stringify(c.item)}` : ''})`, `child-${c.id}`);
      await DBOS.startWorkflow(runWorkflow, { workflowID: c.engineRunId })(c.id);
    }
    const results: (ChildRef & RunOutcome)[] = [];
    for (const c of children) {
      const left = await remainingMs(x);
      const outcome = await childOutcome(c.engineRunId, Math.min(DEFAULT_CHILD_WAIT_SECONDS, left / 1000));
      if (outcome === null) throw new StepFailure(`child run ${c.id} did not finish within the step timeout`);
      await stepLog(x, outcome.status === 'completed' ? 'info' : 'error', `Child run ${c.id} (${c.taskType}) ${outcome.status}`, `child-done-${c.id}`);
      results.push({ ...c, ...outcome });
    }
    const failed = results.filter((r) => r.status !== 'completed');
    if (failed.length) throw new StepFailure(failed.map((f) => `child run ${f.id} (${f.taskType}) ended ${f.status}${f.error ? `: ${f.error}` : ''}`).join('; '), false);
    if (x.step.with.forEach === undefined) return { runId: results[0].id, ...results[0].result };
    return { children: results.map((r) => ({ runId: r.id, item: r.item, status: r.status, result: r.result })) };
  };
}

/** A child's outcome; a child cancelled on its own (cancel-children) reads as `cancelled`, not as an engine error. */
async function childOutcome(engineRunId: string, timeoutSeconds: number): Promise<RunOutcome | null> {
  try {
    return await DBOS.getResult<RunOutcome>(engineRunId, { timeoutSeconds, pollingIntervalMs: 250 });
  } catch (err) {
    if (/was cancelled/.test(messageOf(err))) return { status: 'cancelled', result: {}, error: 'cancelled' };
    throw err;
  }
}

function safeRender(value: unknown, ctx: Record<string, unknown>): unknown {
  try {
    return render(value, ctx);
  } catch (err) {
    throw new StepFailure(messageOf(err), false);
  }
}
