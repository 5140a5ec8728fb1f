import type { RunStatus } from '../core/status.js';

/** What a run workflow returns (and what a parent's `flow` step waits for). */
export interface RunOutcome {
  status: RunStatus;
  result: Record<string, unknown>;
  error: string | null;
}

/** What a step workflow returns to the run workflow. */
export interface StepOutcome {
  ref: string;
  status: 'completed' | 'failed' | 'skipped';
  output: unknown;
  error: string | null;
}
