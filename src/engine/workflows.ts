import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import { SYSTEM } from '../core/audit/audit-log.js';
import { tracked } from './live-workflows.js';
import { stepWorkflowId } from '../core/runs/engine-port.js';
import type { StepKindName } from '../core/registry/manifest-schema.js';
import { noticeRun } from '../core/notify/notice-run.js';
import { expressionContext } from './context.js';
import type { EngineDeps } from './engine-deps.js';
import type { EngineRun } from './engine-run.js';
import { evaluateCondition } from '../core/expressions/expressions.js';
import { planNext, runsAlone, settle, summarize, type GraphState } from './graph-state.js';
import type { RunOutcome, StepOutcome } from './run-outcome.js';
import { isCancellation, messageOf, StepFailure } from './step-failure.js';
import { approvalStep } from './steps/approval.js';
import { preResolve } from './steps/step-kind.js';
import { flowStep } from './steps/flow.js';
import { httpRequestStep } from './steps/http-request.js';
import { logStep } from './steps/log.js';
import { notifyStep } from './steps/notify.js';
import { sleepStep } from './steps/sleep.js';
import type { StepExecution, StepKind } from './steps/step-kind.js';
import { waitForEventStep } from './steps/wait-for-event.js';
import { render } from '../core/expressions/templates.js';
import type { NewLogLine } from '../core/logs/run-logs.js';

export const RUN_WORKFLOW = 'flowgate.run';
export const STEP_WORKFLOW = 'flowgate.step';

/** Topic on which step workflows report to their run workflow. */
const STEP_DONE = 'flowgate.step-done';
/** How long a run workflow blocks on one recv before looping (each recv is checkpointed). */
const RECV_SECONDS = 24 * 3600;

let deps: EngineDeps | undefined;
/** Hands the services to the workflows. Called once, before DBOS launches. */
export function setEngineDeps(d: EngineDeps): void {
  deps = d;
}
function services(): EngineDeps {
  if (!deps) throw new Error('engine services not set before launch');
  return deps;
}

/**
 * One step of a run: evaluates its condition, runs its kind with retries and backoff, and records
 * the StepRun. Any failure becomes a `failed` outcome. Runs in whichever workflow hosts the step:
 * its own child workflow, or the run's when the step runs alone.
 */
async function executeStep(run: EngineRun, ref: string, depsRequired: number): Promise<StepOutcome> {
  const d = services();
  const step = run.definition.steps.find((s) => s.ref === ref)!;
  const line = (level: NewLogLine['level'], message: string): NewLogLine => ({ level, source: `step:${ref}`, group: step.type, message });
  // Lines a kind noted during this attempt: written with the attempt's end, in its checkpoint.
  let notes: NewLogLine[] = [];
  // The step's end and its last log lines are one durable step: one checkpoint, two statements.
  const done = async (o: StepOutcome, last?: NewLogLine) => {
    const lines = last ? [...notes, last] : notes;
    await durableStep(async () => {
      await d.logs.append(run.id, lines);
      await d.store.stepFinishedWithAttempts(run.id, ref, step.type, o.status, o.output, o.error, depsRequired);
    }, { name: `${ref}.finish` });
    return o;
  };
  try {
    if (step.if) {
      const verdict = await durableStep(async () => {
        try {
          return { run: evaluateCondition(step.if!, await expressionContext(d, run)) };
        } catch (err) {
          return { run: false, error: messageOf(err) };
        }
      }, { name: `${ref}.condition` });
      if (verdict.error) return await done({ ref, status: 'failed', output: null, error: `condition failed: ${verdict.error}` });
      if (!verdict.run) return await done({ ref, status: 'skipped', output: null, error: null }, line('info', `Skipped: condition "${step.if}" is false`));
    }
    const attempts = (step.retry?.attempts ?? 0) + 1;
    // The clock is read (and checkpointed) only when a timeout needs it.
    const deadline = step.timeout ? (await DBOS.now()) + step.timeout * 1000 : undefined;
    const kind = KINDS[step.type as StepKindName] as StepKind | undefined;
    // The previous engine runs the first seven kinds only; later plugins run on engine v2.
    if (!kind) return await done({ ref, status: 'failed', output: null, error: `plugin ${step.type} runs on engine v2 only (FLOWGATE_ENGINE=v2)` });
    for (let attempt = 1; ; attempt++) {
      notes = [];
      const x: StepExecution = {
        deps: d, run, step, stepWorkflowId: DBOS.workflowID!, attempt, deadline,
        note: (level, message) => { notes.push(line(level, message)); },
      };
      // The start also renders the step's input: one checkpoint instead of two.
      x.resolved = await durableStep(async () => {
        await d.store.stepAttemptStarted(run.id, ref, step.type, attempt, depsRequired, DBOS.workflowID!);
        await d.logs.append(run.id, [line('info', `Step ${ref} (${step.type}) started${attempt > 1 ? `, attempt ${attempt} of ${attempts}` : ''}`)]);
        return preResolve(x);
      }, { name: `${ref}.start#${attempt}` });
      try {
        const output = await kind(x);
        return await done({ ref, status: 'completed', output: output ?? null, error: null }, line('info', `Step ${ref} completed`));
      } catch (err) {
        if (isCancellation(err)) throw err;
        const retryable = !(err instanceof StepFailure) || err.retryable;
        const reason = messageOf(err);
        const now = deadline !== undefined ? await DBOS.now() : undefined;
        const timedOut = deadline !== undefined && now! >= deadline;
        const canRetry = retryable && !timedOut && attempt < attempts;
        const backoff = canRetry ? (step.retry!.backoffSeconds * step.retry!.factor ** (attempt - 1)) * 1000 : 0;
        const failed = line('error', `Step ${ref} failed${timedOut ? ' (timed out)' : ''}: ${reason}${canRetry ? `; retrying in ${backoff / 1000}s` : ''}`);
        if (!canRetry) return await done({ ref, status: 'failed', output: null, error: timedOut ? `timed out after ${step.timeout}s: ${reason}` : reason }, failed);
        const lines = [...notes, failed];
        await durableStep(async () => {
          await d.logs.append(run.id, lines);
          await d.store.stepAttemptFailed(run.id, ref, reason);
        }, { name: `${ref}.fail-log#${attempt}` });
        await DBOS.sleep(deadline !== undefined ? Math.min(backoff, Math.max(0, deadline - now!)) : backoff);
      }
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    return done({ ref, status: 'failed', output: null, error: `internal error: ${messageOf(err)}` });
  }
}

/** A step beside others: its own workflow, reporting its outcome to the run's. */
async function stepWorkflowImpl(run: EngineRun, ref: string, depsRequired: number): Promise<StepOutcome> {
  return tracked(async () => {
    const outcome = await executeStep(run, ref, depsRequired);
    await DBOS.send(run.engineRunId, outcome, STEP_DONE);
    return outcome;
  });
}

/**
 * A run: interprets the flow's step graph. A step that runs alone executes here; steps that run
 * side by side start as child workflows (so they run in parallel and recover independently) and
 * their completions arrive as messages, whose order is checkpointed, so a recovered run replays
 * the same decisions.
 */
async function runWorkflowImpl(runId: string): Promise<RunOutcome> {
  const d = services();
  const run = await durableStep(() => d.store.claimForEngine(runId), { name: 'load' });
  if (!run) {
    const r = await durableStep(async () => { const x = await d.store.findById(runId); return x ? { status: x.status, result: x.result, error: x.error ?? null } : null; }, { name: 'load-final' });
    return r ?? { status: 'failed', result: {}, error: 'run not found' };
  }

  const state: GraphState = { steps: run.definition.steps, status: {}, failures: [], maxParallel: run.definition.maxParallelSteps ?? 0 };
  for (;;) {
    const plan = planNext(state);
    for (const blocked of plan.block) {
      await durableStep(() => d.store.stepFinished(run.id, blocked.ref, blocked.kind, blocked.status, null, blocked.reason, blocked.depsRequired), { name: `${blocked.ref}.blocked` });
    }
    let outcome: StepOutcome | null;
    if (runsAlone(state, plan)) {
      // Nothing else can run meanwhile: no child workflow, no messages, no wake-up hop.
      const s = plan.start[0];
      outcome = await executeStep(run, s.ref, s.dependsOn.length);
    } else {
      for (const s of plan.start) {
        await DBOS.startWorkflow(stepWorkflow, { workflowID: stepWorkflowId(run.engineRunId, s.ref) })(run, s.ref, s.dependsOn.length);
      }
      if (plan.finished) break;
      outcome = await DBOS.recv<StepOutcome>(STEP_DONE, { timeoutSeconds: RECV_SECONDS });
    }
    if (!outcome) continue;
    const toCancel = settle(state, outcome);
    if (toCancel.length) {
      await durableStep(() => DBOS.cancelWorkflows(toCancel.map((r) => stepWorkflowId(run.engineRunId, r)), { cancelChildren: true }), { name: `cancel-after-${outcome.ref}` });
      await durableStep(async () => {
        for (const r of toCancel) {
          const s = run.definition.steps.find((x) => x.ref === r)!;
          await d.store.stepFinishedWithAttempts(run.id, r, s.type, 'cancelled', null, `cancelled: step ${outcome.ref} failed`, s.dependsOn.length);
        }
      }, { name: `mark-cancelled-after-${outcome.ref}` });
    }
  }

  const summary = summarize(state);
  const final = await durableStep(async (): Promise<RunOutcome> => {
    let result: Record<string, unknown> = {};
    let status = summary.status;
    let error = summary.error;
    const outputs = await d.store.stepOutputs(run.id);
    if (run.definition.outputs && status !== 'failed') {
      try {
        result = render(run.definition.outputs, { ...(await expressionContext(d, run)), steps: outputs }) as Record<string, unknown>;
      } catch (err) {
        status = 'failed';
        error = `outputs: ${messageOf(err)}`;
      }
    } else {
      result = { steps: Object.fromEntries(Object.entries(outputs).filter(([, o]) => o.status === 'completed').map(([k, o]) => [k, o.output])) };
    }
    const changed = await d.store.finish(run.id, status, result, error, [{ level: status === 'completed' ? 'info' : 'error', source: 'engine', group: 'run', message: `Run ${status}${error ? `: ${error}` : ''}` }]);
    // An approval still pending when its run ends some other way can no longer matter.
    if (run.definition.steps.some((s) => s.type === 'approval')) await d.approvals.closeForRuns([run.id], 'stale', SYSTEM);
    if (!changed) {
      const current = await d.store.findById(run.id);
      return { status: current?.status ?? status, result: current?.result ?? result, error: current?.error ?? error };
    }
    await d.audit.record(SYSTEM, `run.${status}`, 'run', run.id, error ? { error } : undefined);
    d.runFinished(run.id, status);
    return { status, result, error };
  }, { name: 'finish' });

  // Without a callback there is nobody to tell (and no checkpoint to write).
  if (run.callback && run.callback.type !== 'none') {
    await durableStep(async () => {
      try {
        const stored = await d.store.findById(run.id);
        await d.notifier.notify(run.callback, { event: 'run.finished', runId: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, status: final.status, result: final.result, error: final.error, run: stored ? noticeRun(stored) : undefined });
      } catch (err) {
        await d.logs.append(run.id, [{ level: 'warn', source: 'engine', group: 'notify', message: `Result not delivered: ${messageOf(err)}` }]);
      }
    }, { name: 'notify-finished' });
  }
  return final;
}

export const stepWorkflow = DBOS.registerWorkflow(stepWorkflowImpl, { name: STEP_WORKFLOW });
export const runWorkflow = DBOS.registerWorkflow((runId: string) => tracked(() => runWorkflowImpl(runId)), { name: RUN_WORKFLOW });

const KINDS: Record<StepKindName, StepKind> = {
  log: logStep,
  'http.request': httpRequestStep,
  sleep: sleepStep,
  wait_for_event: waitForEventStep,
  flow: flowStep(runWorkflow),
  notify: notifyStep,
  approval: approvalStep,
};
