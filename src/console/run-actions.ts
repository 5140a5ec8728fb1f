import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { hasRole } from '../core/identity/principal.js';
import type { ControlVerb } from '../core/runs/run-permissions.js';
import { overridable } from '../core/runs/step-control.js';
import { isTerminalRun, TERMINAL_STEP_STATUSES, type StepStatus } from '../core/status.js';
import type { Run } from '../db/entities/run.js';
import { CONTROL_ROLES } from '../http/workflow-runs/visible-run.js';
import { requesterOf, visibleRun } from './requester.js';

/**
 * A run the viewer may see, with its definition (the graph and step controls need it): the
 * console's one visibility check (`visibleRun`), so another project's run is "not found".
 */
export async function visibleRunFor(s: Services, id: string, viewer: ConsoleIdentity): Promise<Run> {
  const run = await visibleRun(s, id, viewer);
  return (await s.store.findById(run.id, true)) ?? run;
}

/** The run controls the page offers: only those the run's state and the viewer's rights allow (the core checks again when used). */
export interface RunActions {
  pause: boolean;
  resume: boolean;
  cancel: boolean;
  retry: boolean;
  /** Skip and force-complete of pending or waiting steps. */
  stepControl: boolean;
  /** Retry of ended steps. */
  stepRetry: boolean;
  /** Why the viewer sees no controls at all, when that is down to them (not to the run's state). */
  why?: string;
}

export interface StepActions {
  skip: boolean;
  forceComplete: boolean;
  retry: boolean;
}

const NONE: RunActions = { pause: false, resume: false, cancel: false, retry: false, stepControl: false, stepRetry: false };

export async function runActions(s: Services, run: Run, viewer: ConsoleIdentity): Promise<RunActions> {
  // The REST dialects' roles for control, then the core's own rule per verb.
  if (!hasRole(viewer.principal, CONTROL_ROLES)) return { ...NONE, why: `You are signed in as a ${viewer.principal.platformRole ?? viewer.principal.role}: you may look, not control runs` };
  if (!s.engine.isRunning()) return { ...NONE, why: 'The flow engine of this server is not running (it is stopping); controls are back once it is' };
  const who = requesterOf(viewer);
  const may = async (verb: ControlVerb) => !(await s.runs.controlRefusal(run, who, verb));
  const [cancel, pause, resume, retry, control] = await Promise.all((['cancel', 'pause', 'resume', 'retry', 'control'] as const).map(may));
  if (!cancel && !pause && !resume && !retry && !control) return { ...NONE, why: await s.runs.controlRefusal(run, who, 'control') };
  // The states `RunControl` and `RunService.cancel` accept (they refuse the others with a 400 or 409).
  const v2 = run.engineVersion === 'v2' && run.executionMode === 'flow';
  const ended = isTerminalRun(run.status);
  return {
    pause: pause && v2 && !ended && run.status !== 'queued' && run.status !== 'paused',
    resume: resume && v2 && run.status === 'paused',
    cancel: cancel && !ended,
    retry: retry && ended && run.executionMode === 'flow' && s.runs.carriesControl(),
    stepControl: control && v2 && !ended,
    stepRetry: retry && v2,
  };
}

/**
 * The step controls for one step: skip and force-complete only before it ran to an end,
 * force-complete never for an approval, retry only after it ended without completing (the core
 * also retries a completed step; offering that on every row of a finished run would bury the
 * buttons that matter, and the REST API still does it).
 */
export function stepActions(actions: RunActions, kind: string, status: StepStatus): StepActions {
  return {
    skip: actions.stepControl && overridable(status),
    forceComplete: actions.stepControl && overridable(status) && kind !== 'approval',
    retry: actions.stepRetry && TERMINAL_STEP_STATUSES.includes(status) && status !== 'completed',
  };
}
