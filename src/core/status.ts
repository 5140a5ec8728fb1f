/** The one run-status vocabulary of the core; each REST dialect maps it to its own words. */
export const RUN_STATUSES = [
  'queued', 'running', 'waiting', 'suspended', 'paused',
  'completed', 'partial', 'failed', 'cancelled', 'timed_out',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['completed', 'partial', 'failed', 'cancelled', 'timed_out'];
export const isTerminalRun = (s: RunStatus) => TERMINAL_RUN_STATUSES.includes(s);

export const STEP_STATUSES = ['pending', 'waiting', 'running', 'completed', 'failed', 'skipped', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const TERMINAL_STEP_STATUSES: readonly StepStatus[] = ['completed', 'failed', 'skipped', 'cancelled'];

/** Why a run (and its unfinished steps) was cancelled by the end of the run it belongs to. */
export const PARENT_ENDED = 'cancelled: its parent run ended';
