import type { Services } from '../../container.js';
import type { Approval } from '../../db/entities/approval.js';
import type { LogLine } from '../../db/entities/log-line.js';
import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import { personKey } from '../../core/identity/directory.js';
import type { FlowRunRecord } from '../../core/runs/flow-run-records.js';
import type { RunStatus, StepStatus } from '../../core/status.js';

/** This API's phases (the contract's vocabulary); see `runPhase` for how Flowgate's statuses map to them. */
export const PHASES = ['pending', 'waitingForApproval', 'running', 'completed', 'failed', 'cancelled', 'declined'] as const;
export type Phase = (typeof PHASES)[number];

/** The error an external run or action recorded as `declined` carries (Flowgate has no such status: it fails). */
export const DECLINED = 'declined';

/** What a phase written by an external recorder (PUT) is stored as; `runPhase` reads each back as written. */
export const RUN_STATUS_OF: Record<Phase, RunStatus> = {
  pending: 'queued', waitingForApproval: 'suspended', running: 'running', completed: 'completed', failed: 'failed', cancelled: 'cancelled', declined: 'failed',
};
export const STEP_STATUS_OF: Record<Phase, StepStatus> = {
  pending: 'pending', waitingForApproval: 'waiting', running: 'running', completed: 'completed', failed: 'failed', cancelled: 'cancelled', declined: 'failed',
};

/** The approval that decided the run: its latest approved or rejected one. */
function decidingApproval(approvals: Approval[]): Approval | undefined {
  return approvals.filter((a) => (a.status === 'approved' || a.status === 'rejected') && a.resolvedAt)
    .sort((a, b) => b.resolvedAt!.getTime() - a.resolvedAt!.getTime())[0];
}

/** Who settled a decided approval: the rejecting person, or the approver whose approval reached the quorum. */
function reviewerOf(a: Approval): string | undefined {
  const verdict = a.status === 'approved' ? 'approve' : 'reject';
  return a.decisions.filter((d) => d.verdict === verdict).sort((x, y) => Date.parse(x.at) - Date.parse(y.at)).at(-1)?.email ?? a.resolvedBy ?? undefined;
}

/**
 * A run's phase. `queued` is pending; parked on an approval (`suspended`) is waitingForApproval;
 * running, waiting on a timer or event, and paused are running (the run has not ended); completed
 * and partial are completed; failed and timed_out are failed; cancelled is cancelled. A run that
 * failed or was cancelled because its approval was rejected is declined (an external run: as
 * recorded).
 */
export function runPhase(r: Run, approvals: Approval[]): Phase {
  switch (r.status) {
    case 'queued': return 'pending';
    case 'suspended': return 'waitingForApproval';
    case 'waiting': return approvals.some((a) => a.status === 'pending') ? 'waitingForApproval' : 'running';
    case 'running': case 'paused': return 'running';
    case 'completed': case 'partial': return 'completed';
    case 'failed': case 'timed_out': case 'cancelled': {
      const declined = (r.engine === 'external' && r.error === DECLINED) || decidingApproval(approvals)?.status === 'rejected';
      return declined && r.status !== 'timed_out' ? 'declined' : r.status === 'cancelled' ? 'cancelled' : 'failed';
    }
  }
}

/** A step's phase, as its run's: skipped (a condition, or a control action) is cancelled; a rejected approval step is declined. */
export function stepPhase(s: StepRun, approval: Approval | undefined): Phase {
  switch (s.status) {
    case 'pending': return 'pending';
    case 'waiting': return s.kind === 'approval' || s.waitingFor?.startsWith('approval') ? 'waitingForApproval' : 'running';
    case 'running': return 'running';
    case 'completed': return 'completed';
    case 'failed': case 'skipped':
      if (s.error === DECLINED && s.kind === 'external') return 'declined';
      if (approval?.status === 'rejected') return 'declined';
      return s.status === 'failed' ? 'failed' : 'cancelled';
    case 'cancelled': return 'cancelled';
  }
}

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

/** The flow's parameters: the payload without `id`, which names the flow type in Flowgate's payloads. */
export function argsOf(r: Run): Record<string, unknown> {
  const { id: _flowType, ...args } = r.payload ?? {};
  return args;
}

/** The person who started a run: for a retry or a scheduled run, the person it acts for. */
export const creatorOf = (r: Run): string | null => personKey(r.requestedBy) ?? personKey(r.triggeredBy);

export interface RunFacts {
  steps: StepRun[];
  lines: LogLine[];
  approvals: Approval[];
  record?: FlowRunRecord;
  numbers: Map<string, number>;
}

export function presentFlowRun(r: Run, f: RunFacts) {
  const decided = decidingApproval(f.approvals);
  const reviewer = decided ? personKey(reviewerOf(decided)) : null;
  const creator = creatorOf(r);
  const createdBy = creator ? f.numbers.get(creator) ?? null : null;
  const approvalOf = (ref: string) => f.approvals.find((a) => a.stepRef === ref);
  return {
    id: f.record?.name ?? r.id,
    flowId: r.taskType,
    flowType: f.record?.flowType ?? 'selfServiceAction',
    args: argsOf(r),
    phase: runPhase(r, f.approvals),
    startTime: iso(r.startedAt),
    endTime: iso(r.finishedAt),
    actions: f.steps.map((s) => ({ id: s.stepRef, phase: stepPhase(s, approvalOf(s.stepRef)), startTime: iso(s.startedAt), endTime: iso(s.finishedAt) })),
    outputs: r.result ?? {},
    logs: f.lines.map((l) => ({ timestamp: l.at.toISOString(), message: l.message, level: l.level, action: l.source.startsWith('step:') ? l.source.slice(5) : null })),
    tags: Object.entries(r.tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, value]) => ({ key, value })),
    createdAt: r.createdAt.toISOString(),
    createdBy,
    updatedAt: r.updatedAt.toISOString(),
    updatedBy: f.record?.updatedBy ?? createdBy,
    reviewedBy: reviewer ? f.numbers.get(reviewer) ?? null : null,
    reviewedAt: iso(decided?.resolvedAt),
    // Extensions: where the run belongs, and its id in Flowgate's other APIs.
    project: r.repositoryIdentifier,
    runId: r.id,
  };
}
export type FlowRunBody = ReturnType<typeof presentFlowRun>;

/** The last lines of each run a list shows (a run's whole log is in its own GET). */
export const LIST_LOG_TAIL = 100;

/** Runs as this API shows them, in the order given: their steps, log, approvals, records and people read in one go. */
export async function presentRuns(s: Services, runs: Run[], wholeLog: boolean): Promise<FlowRunBody[]> {
  if (!runs.length) return [];
  const ids = runs.map((r) => r.id);
  const [steps, lines, approvals, records] = await Promise.all([
    s.store.stepsOfRuns(ids),
    wholeLog && ids.length === 1 ? s.logs.list(ids[0]) : s.logs.tailsOfRuns(ids, LIST_LOG_TAIL),
    s.approvals.forRuns(ids),
    s.flowRuns.of(ids),
  ]);
  const people = new Set<string>();
  for (const r of runs) {
    const creator = creatorOf(r);
    if (creator) people.add(creator);
  }
  for (const a of approvals) {
    const reviewer = a.status === 'approved' || a.status === 'rejected' ? personKey(reviewerOf(a)) : null;
    if (reviewer) people.add(reviewer);
  }
  const numbers = await s.identities.numbersOf(people);
  return runs.map((r) => presentFlowRun(r, {
    steps: steps.filter((x) => x.runId === r.id),
    lines: lines.filter((l) => l.runId === r.id),
    approvals: approvals.filter((a) => a.runId === r.id),
    record: records.get(r.id),
    numbers,
  }));
}
