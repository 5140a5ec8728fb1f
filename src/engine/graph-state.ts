import { descendants } from '../core/registry/graph.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import type { RunStatus } from '../core/status.js';
import type { StepOutcome } from './run-outcome.js';

/**
 * Where each step of a run stands, as the run workflow sees it. Pure and deterministic:
 * the same outcomes in the same order always give the same decisions (replay depends on it).
 */
type Standing =
  | 'running'
  | 'completed'
  | 'skipped'
  /** failed with onFailure: continue — dependents still run */
  | 'failed_continue'
  /** failed with onFailure: skip_dependents — dependents are skipped */
  | 'failed_blocking'
  | 'failed'
  /** not run because a dependency failed (skip_dependents), or a compensation that is not needed */
  | 'blocked'
  | 'cancelled';

export interface GraphState {
  steps: StepDefinition[];
  status: Record<string, Standing>;
  failures: { ref: string; error: string; onFailure: StepDefinition['onFailure']; compensation?: true }[];
  /** Set when a step failed with fail_workflow or compensate (or the run was cancelled): nothing new starts but compensations. */
  aborted?: boolean;
  /** Why the run was cancelled from outside (see `cancel`); the run then ends cancelled, not failed. */
  cancelled?: string;
  /** Steps cancelled while running: their effect is unknown (an onFailure: compensate step is compensated). */
  interrupted?: string[];
  /** The flow's maxParallelSteps: steps running at once; 0 or absent = no cap. */
  maxParallel?: number;
  /** Nothing new starts (the run is paused, or its executor yields it to a control action); running steps finish. */
  hold?: boolean;
  /** The run passed its `expires_at`: it ends timed_out once its compensations ran. */
  timedOut?: boolean;
  /**
   * Branching steps (`flow.if`, `flow.switch`): the steps a completed step's output rules out.
   * They are skipped with their descendants; the run still ends completed.
   */
  branches?(step: StepDefinition, output: unknown, steps: StepDefinition[]): string[];
  /** Steps ruled out so far, with the step that ruled them out. */
  pruned?: Record<string, string>;
}

export interface Plan {
  start: StepDefinition[];
  /** Steps that will never run, recorded as skipped or cancelled. */
  block: { ref: string; kind: string; reason: string; depsRequired: number; status: 'skipped' | 'cancelled' }[];
  finished: boolean;
}

const RELEASES: Standing[] = ['completed', 'skipped', 'failed_continue'];
const BLOCKS: Standing[] = ['failed_blocking', 'blocked'];

const runningCount = (state: GraphState) => Object.values(state.status).filter((v) => v === 'running').length;

/** A compensation of `ref` is due: the step completed, or it may have left a partial effect and asks for it. */
function compensable(state: GraphState, ref: string): boolean {
  const st = state.status[ref];
  if (st === 'completed') return true;
  const step = state.steps.find((s) => s.ref === ref);
  return step?.onFailure === 'compensate' && (st === 'failed' || (state.interrupted ?? []).includes(ref));
}

export function planNext(state: GraphState): Plan {
  const plan: Plan = { start: [], block: [], finished: false };
  const cap = state.maxParallel ?? 0;
  let running = runningCount(state);
  // Steps that would start but for a hold: the run is not finished while any remain.
  let held = 0;
  const start = (s: StepDefinition) => {
    if (state.hold) {
      held++;
      return;
    }
    state.status[s.ref] = 'running';
    plan.start.push(s);
    running++;
  };
  const block = (s: StepDefinition, reason: string, status: 'skipped' | 'cancelled') => {
    state.status[s.ref] = status === 'skipped' ? 'blocked' : 'cancelled';
    plan.block.push({ ref: s.ref, kind: s.type, reason, depsRequired: s.dependsOn.length, status });
  };
  let changed = true;
  // Blocking cascades through descendants, so repeat until nothing moves.
  while (changed) {
    changed = false;
    for (const s of state.steps) {
      if (state.status[s.ref]) continue;
      if (s.compensates) {
        // Off the normal path: decided once the run fails, or skipped when it ends otherwise.
        if (!state.aborted) continue;
        if (!compensable(state, s.compensates)) {
          block(s, `skipped: step ${s.compensates} did not complete`, 'skipped');
          changed = true;
          continue;
        }
        // Reverse dependency order: what was done later is undone first.
        const later = descendants(state.steps, s.compensates);
        const undoingLater = state.steps.some((c) => c.compensates && c !== s && later.has(c.compensates) && (!state.status[c.ref] || state.status[c.ref] === 'running'));
        if (undoingLater || (cap > 0 && running >= cap)) continue;
        start(s);
        changed = !state.hold;
        continue;
      }
      if (state.aborted) {
        block(s, state.cancelled !== undefined ? 'not run: the run was cancelled' : 'not run: the run failed', 'cancelled');
        changed = true;
        continue;
      }
      const ruledOutBy = state.pruned?.[s.ref];
      if (ruledOutBy) {
        block(s, `skipped: not the branch ${ruledOutBy} took`, 'skipped');
        changed = true;
        continue;
      }
      const blocker = s.dependsOn.find((d) => BLOCKS.includes(state.status[d]));
      if (blocker) {
        block(s, `skipped: dependency ${blocker} did not complete`, 'skipped');
        changed = true;
        continue;
      }
      // A step over the cap waits: it stays undecided and is planned again when a slot frees.
      if (s.dependsOn.every((d) => RELEASES.includes(state.status[d])) && (cap === 0 || running < cap)) {
        start(s);
        changed = !state.hold;
      }
    }
  }
  if (!state.aborted && plan.start.length === 0 && running === 0 && held === 0) {
    // Every ordinary step is decided and the run did not fail: its compensations are not needed.
    for (const s of state.steps) if (s.compensates && !state.status[s.ref]) block(s, 'skipped: the run did not fail', 'skipped');
  }
  plan.finished = plan.start.length === 0 && running === 0 && held === 0;
  return plan;
}

/** The plan starts one step and no other is running: it can run in the run's own workflow. */
export function runsAlone(state: GraphState, plan: Plan): boolean {
  return plan.start.length === 1 && runningCount(state) === 1;
}

/** Nothing new starts but compensations; returns the running steps to cancel. */
function abort(state: GraphState): string[] {
  state.aborted = true;
  const running = Object.entries(state.status).filter(([, v]) => v === 'running').map(([k]) => k);
  for (const r of running) state.status[r] = 'cancelled';
  state.interrupted = [...(state.interrupted ?? []), ...running];
  return running;
}

/** Applies one step's outcome; returns the refs of running steps to cancel (fail_workflow, compensate). */
export function settle(state: GraphState, outcome: StepOutcome): string[] {
  if (state.status[outcome.ref] !== 'running') return [];
  const step = state.steps.find((s) => s.ref === outcome.ref)!;
  if (outcome.status !== 'failed') {
    state.status[outcome.ref] = outcome.status;
    if (outcome.status === 'completed' && state.branches) {
      for (const ref of state.branches(step, outcome.output, state.steps)) if (!state.status[ref]) (state.pruned ??= {})[ref] = outcome.ref;
    }
    return [];
  }
  if (step.compensates) {
    // A failed compensation is reported; the other compensations still run.
    state.status[outcome.ref] = 'failed';
    state.failures.push({ ref: outcome.ref, error: outcome.error ?? 'failed', onFailure: step.onFailure, compensation: true });
    return [];
  }
  state.failures.push({ ref: outcome.ref, error: outcome.error ?? 'failed', onFailure: step.onFailure });
  if (step.onFailure === 'continue') state.status[outcome.ref] = 'failed_continue';
  else if (step.onFailure === 'skip_dependents') state.status[outcome.ref] = 'failed_blocking';
  else {
    state.status[outcome.ref] = 'failed';
    return abort(state);
  }
  return [];
}

/**
 * The run is cancelled from outside: returns the running steps to cancel; the compensations of
 * completed steps then become runnable, and the run ends cancelled. A run already failing keeps
 * its compensations running and ends failed.
 */
export function cancel(state: GraphState, reason = 'the run was cancelled'): string[] {
  if (state.aborted) return [];
  state.cancelled = reason;
  return abort(state);
}

export function summarize(state: GraphState): { status: RunStatus; error: string | null } {
  const undone = state.failures.filter((f) => f.compensation).map((f) => `compensation ${f.ref} failed: ${f.error}`);
  const withUndone = (error: string) => [error, ...undone].join('; ');
  if (state.cancelled !== undefined) return { status: state.timedOut ? 'timed_out' : 'cancelled', error: withUndone(state.cancelled) };
  const fatal = state.failures.find((f) => !f.compensation && (f.onFailure === 'fail_workflow' || f.onFailure === 'compensate'));
  if (fatal) return { status: 'failed', error: withUndone(`step ${fatal.ref} failed: ${fatal.error}`) };
  if (state.failures.length) return { status: 'partial', error: state.failures.map((f) => `step ${f.ref} failed: ${f.error}`).join('; ') };
  return { status: 'completed', error: null };
}
