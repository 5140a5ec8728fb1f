import type { Approval, ApprovalStatus } from '../../db/entities/approval.js';
import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import type { RunStatus, StepStatus } from '../../core/status.js';
import { approvalCount } from '../../core/approvals/approval-rules.js';

/** This API's run states and the core statuses each one covers (see README: Statuses). */
export const RUN_STATES = {
  pending: ['queued'],
  running: ['running', 'waiting', 'suspended'],
  paused: ['paused'],
  completed: ['completed', 'partial'],
  failed: ['failed'],
  timed_out: ['timed_out'],
  canceled: ['cancelled'],
} as const satisfies Record<string, readonly RunStatus[]>;
export type RunState = keyof typeof RUN_STATES;
export const RUN_STATE_NAMES = Object.keys(RUN_STATES) as [RunState, ...RunState[]];

const stateOf = Object.fromEntries(Object.entries(RUN_STATES).flatMap(([state, core]) => core.map((c) => [c, state]))) as Record<RunStatus, RunState>;
export const runState = (s: RunStatus): RunState => stateOf[s];

const STEP_STATE: Record<StepStatus, string> = {
  pending: 'pending', waiting: 'waiting', running: 'running', completed: 'completed', failed: 'failed', skipped: 'skipped', cancelled: 'canceled',
};

const APPROVAL_STATE: Record<ApprovalStatus, string> = {
  pending: 'pending', approved: 'approved', rejected: 'rejected', expired: 'timed_out', cancelled: 'canceled', stale: 'canceled',
};

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

/** A run as this API shows it; fields Flowgate has no value for are null (see README). */
export function presentRun(r: Run) {
  return {
    id: r.id,
    workflow_id: r.taskType,
    project_id: r.repositoryIdentifier,
    status: runState(r.status),
    triggered_by: r.triggeredBy,
    workflow_version: null,
    max_parallel_steps: r.maxParallelSteps ?? 0,
    payload: r.payload,
    error: r.error ?? null,
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    expires_at: iso(r.expiresAt),
    retry_of_run_id: r.rerunOfExecutionId ?? null,
    parent_workflow_run_id: r.parentRunId ?? null,
    parent_step_run_id: null,
    tags: r.tags ?? {},
    workflow_version_id: null,
    created_by: r.requestedBy ?? r.triggeredBy,
    created_at: r.createdAt.toISOString(),
  };
}

export function presentStepRun(s: StepRun, run: Pick<Run, 'createdAt'>) {
  return {
    id: s.id,
    workflow_run_id: s.runId,
    workflow_step_id: null,
    step_ref: s.stepRef,
    job_run_id: null,
    attempt: s.attempt,
    status: STEP_STATE[s.status] ?? s.status,
    deps_completed: s.depsCompleted,
    deps_required: s.depsRequired,
    output: s.output ?? null,
    error: s.error ?? null,
    started_at: iso(s.startedAt),
    finished_at: iso(s.finishedAt),
    // A step row is written when the step starts (or is skipped without starting).
    created_at: (s.startedAt ?? s.finishedAt ?? run.createdAt).toISOString(),
  };
}

/** An approval record: `deciders` are its approvers as `decide` checks them (the owners when none are named). */
export function presentStepApproval(a: Approval, deciders: string[]) {
  return {
    id: a.id,
    approvers: deciders,
    status: APPROVAL_STATE[a.status] ?? a.status,
    quorum: a.quorum,
    approvals_received: approvalCount(a),
    requested_by: a.requestedBy,
    requested_at: a.requestedAt.toISOString(),
    expires_at: a.expiresAt.toISOString(),
    decided_by: a.resolvedBy ?? null,
    decided_at: iso(a.resolvedAt),
    decisions: a.decisions.map((d) => ({ email: d.email, verdict: d.verdict, reason: d.reason ?? null, at: d.at })),
  };
}
