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
  /** not run because a dependency failed (skip_dependents) */
  | 'blocked'
  | 'cancelled';

export interface GraphState {
  steps: StepDefinition[];
  status: Record<string, Standing>;
  failures: { ref: string; error: string; onFailure: StepDefinition['onFailure'] }[];
  /** Set when a step failed with fail_workflow: nothing new starts. */
  aborted?: boolean;
}

export interface Plan {
  start: StepDefinition[];
  /** Steps that will never run, recorded as skipped or cancelled. */
  block: { ref: string; kind: string; reason: string; depsRequired: number; status: 'skipped' | 'cancelled' }[];
  finished: boolean;
}

const RELEASES: Standing[] = ['completed', 'skipped', 'failed_continue'];
const BLOCKS: Standing[] = ['failed_blocking', 'blocked'];

export function planNext(state: GraphState): Plan {
  const plan: Plan = { start: [], block: [], finished: false };
  let changed = true;
  // Blocking cascades through descendants, so repeat until nothing moves.
  while (changed) {
    changed = false;
    for (const s of state.steps) {
      if (state.status[s.ref]) continue;
      if (state.aborted) {
        state.status[s.ref] = 'cancelled';
        plan.block.push({ ref: s.ref, kind: s.type, reason: 'not run: the run failed', depsRequired: s.dependsOn.length, status: 'cancelled' });
        changed = true;
        continue;
      }
      const blocker = s.dependsOn.find((d) => BLOCKS.includes(state.status[d]));
      if (blocker) {
        state.status[s.ref] = 'blocked';
        plan.block.push({ ref: s.ref, kind: s.type, reason: `skipped: dependency ${blocker} did not complete`, depsRequired: s.dependsOn.length, status: 'skipped' });
        changed = true;
        continue;
      }
      if (s.dependsOn.every((d) => RELEASES.includes(state.status[d]))) {
        state.status[s.ref] = 'running';
        plan.start.push(s);
        changed = true;
      }
    }
  }
  plan.finished = plan.start.length === 0 && !Object.values(state.status).includes('running');
  return plan;
}

/** The plan starts one step and no other is running: it can run in the run's own workflow. */
export function runsAlone(state: GraphState, plan: Plan): boolean {
  return plan.start.length === 1 && Object.values(state.status).filter((v) => v === 'running').length === 1;
}

/** Applies one step's outcome; returns the refs of running steps to cancel (fail_workflow). */
export function settle(state: GraphState, outcome: StepOutcome): string[] {
  if (state.status[outcome.ref] !== 'running') return [];
  const step = state.steps.find((s) => s.ref === outcome.ref)!;
  if (outcome.status !== 'failed') {
    state.status[outcome.ref] = outcome.status;
    return [];
  }
  state.failures.push({ ref: outcome.ref, error: outcome.error ?? 'failed', onFailure: step.onFailure });
  if (step.onFailure === 'continue') state.status[outcome.ref] = 'failed_continue';
  else if (step.onFailure === 'skip_dependents') state.status[outcome.ref] = 'failed_blocking';
  else {
    state.status[outcome.ref] = 'failed';
    state.aborted = true;
    const running = Object.entries(state.status).filter(([, v]) => v === 'running').map(([k]) => k);
    for (const r of running) state.status[r] = 'cancelled';
    return running;
  }
  return [];
}

export function summarize(state: GraphState): { status: RunStatus; error: string | null } {
  const fatal = state.failures.find((f) => f.onFailure === 'fail_workflow');
  if (fatal) return { status: 'failed', error: `step ${fatal.ref} failed: ${fatal.error}` };
  if (state.failures.length) return { status: 'partial', error: state.failures.map((f) => `step ${f.ref} failed: ${f.error}`).join('; ') };
  return { status: 'completed', error: null };
}
