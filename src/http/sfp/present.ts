import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import type { RunStatus } from '../../core/status.js';
import { isTerminalRun, TERMINAL_STEP_STATUSES } from '../../core/status.js';

const SFP_STATUS: Record<RunStatus, string> = {
  queued: 'Running', running: 'Running', paused: 'Running', waiting: 'Waiting', suspended: 'Suspended',
  completed: 'Completed', partial: 'Completed', failed: 'Failed', timed_out: 'Failed', cancelled: 'Cancelled',
};
export const sfpStatus = (s: RunStatus) => SFP_STATUS[s];

/** FlowRunSummaryDto, plus the fields every view of a run shares. */
export function presentRunSummary(r: Run) {
  const terminal = isTerminalRun(r.status);
  return {
    id: r.id,
    engineRunId: r.engineRunId,
    flowPath: r.flowPath,
    status: sfpStatus(r.status),
    engineStatus: r.status,
    success: terminal ? r.status === 'completed' : null,
    createdAt: r.createdAt.toISOString(),
    startedAt: r.startedAt?.toISOString(),
    finishedAt: r.finishedAt?.toISOString(),
    durationMs: r.finishedAt && r.startedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : undefined,
    triggeredBy: r.triggeredBy,
    taskType: r.taskType,
    requestedTaskType: r.requestedTaskType ?? undefined,
    category: r.category,
    executionMode: r.executionMode,
    repositoryIdentifier: r.repositoryIdentifier,
    cicdRunUrl: r.cicdRunUrl ?? undefined,
    workItemRef: r.workItemRef ?? undefined,
    parentExecutionId: r.parentRunId ?? undefined,
    rerunOfExecutionId: r.rerunOfExecutionId ?? undefined,
    rerunType: r.rerunType ?? undefined,
    schedulePath: r.schedulePath ?? undefined,
    engine: r.engine,
  };
}

export function presentStep(s: StepRun) {
  return {
    ref: s.stepRef,
    kind: s.kind,
    status: s.status,
    attempt: s.attempt,
    depsCompleted: s.depsCompleted,
    depsRequired: s.depsRequired,
    output: s.output ?? null,
    error: s.error ?? null,
    waitingFor: s.waitingFor ?? undefined,
    startedAt: s.startedAt?.toISOString(),
    finishedAt: s.finishedAt?.toISOString(),
    attempts: presentAttempts(s),
  };
}

/** Each attempt, oldest first; one a cancel left open ends as its step did. */
function presentAttempts(s: StepRun) {
  const ended = TERMINAL_STEP_STATUSES.includes(s.status);
  return (s.attempts ?? []).map((a) => ({
    attempt: a.attempt,
    status: a.status === 'running' && ended ? s.status : a.status,
    error: a.error ?? null,
    startedAt: a.startedAt ? new Date(a.startedAt).toISOString() : undefined,
    finishedAt: a.finishedAt ? new Date(a.finishedAt).toISOString() : a.status === 'running' && ended ? s.finishedAt?.toISOString() : undefined,
  }));
}

/** Counts of children by sfp status and the status they add up to. */
export function aggregateChildren(children: Run[]) {
  const byStatus: Record<string, number> = {};
  for (const c of children) byStatus[sfpStatus(c.status)] = (byStatus[sfpStatus(c.status)] ?? 0) + 1;
  const all = children.length;
  const n = (s: string) => byStatus[s] ?? 0;
  const status = all === 0 ? null
    : n('Failed') > 0 ? 'Failed'
    : n('Running') + n('Waiting') + n('Suspended') > 0 ? (n('Suspended') ? 'Suspended' : n('Waiting') ? 'Waiting' : 'Running')
    : n('Cancelled') === all ? 'Cancelled'
    : n('Completed') === all ? 'Completed' : 'Completed';
  return { total: all, byStatus, status };
}

/** The run's payload and result as shown to API callers (the callback only by its type). */
export function presentRunDetail(r: Run, steps: StepRun[], children: Run[]) {
  return {
    ...presentRunSummary(r),
    payload: r.payload,
    result: r.result,
    error: r.error ?? null,
    callback: r.callback ? { type: r.callback.type } : null,
    steps: steps.map(presentStep),
    ...(children.length ? { children: children.map(presentRunSummary), childrenStatus: aggregateChildren(children) } : {}),
  };
}
