import { descendants } from '../registry/graph.js';
import type { StepDefinition } from '../registry/manifest-schema.js';
import type { StepStatus } from '../status.js';

/** A step row as run control reads it. */
export interface ControlStep {
  ref: string;
  status: StepStatus;
  error: string | null;
  overriddenBy: string | null;
  waitingFor: string | null;
}

/**
 * Whether the row is an outcome the engine keeps when it rebuilds the run: completed, failed,
 * skipped by its condition (no error) or by a person. Other terminal rows (skipped because a
 * dependency did not complete, cancelled) are derived again from those.
 */
export const isOutcome = (r: ControlStep) =>
  r.status === 'completed' || r.status === 'failed' || (r.status === 'skipped' && (r.error === null || r.overriddenBy !== null));

/** A step without a row has not started: it is pending. */
export const statusOf = (rows: ControlStep[], ref: string): StepStatus => rows.find((r) => r.ref === ref)?.status ?? 'pending';

/** Skip and force-complete act only on a step that has not run to an end (pending, or parked waiting). */
export const overridable = (status: StepStatus) => status === 'pending' || status === 'waiting';

/**
 * The rows to set back to pending when steps are run again (`roots`, with their descendants for
 * a subtree replay): those, plus every derived row, so the engine decides again what a changed
 * outcome releases or blocks. Outcomes of other steps are kept.
 */
export function rowsToReset(steps: StepDefinition[], rows: ControlStep[], roots: string[], subtree: boolean): string[] {
  const chosen = new Set(roots);
  if (subtree) for (const r of roots) for (const d of descendants(steps, r)) chosen.add(d);
  return rows.filter((r) => chosen.has(r.ref) || (r.status !== 'pending' && r.status !== 'waiting' && r.status !== 'running' && !isOutcome(r))).map((r) => r.ref);
}
