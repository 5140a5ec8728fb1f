import type { Approval } from '../../db/entities/approval.js';
import type { LogLine } from '../../db/entities/log-line.js';
import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import type { FlowRegistry } from '../../core/registry/registry.js';
import type { StepDefinition } from '../../core/registry/manifest-schema.js';
import { isTerminalRun, type RunStatus, type StepStatus } from '../../core/status.js';
import { pluginFor } from '../../plugins/catalogue.js';
import { triggerIdOf, type TriggerType } from './trigger.js';

/** This API's execution statuses; the last four are terminal. */
export const EXECUTION_STATUSES = ['QUEUED', 'RUNNING', 'PAUSED', 'WAITING', 'SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** Core → here. A suspended run waits for an approval, a waiting one for an event or a timer; `partial` is a SUCCESS whose `coreStatus` tells. */
const EXECUTION_STATUS: Record<RunStatus, ExecutionStatus> = {
  queued: 'QUEUED', running: 'RUNNING', paused: 'PAUSED', suspended: 'WAITING', waiting: 'WAITING',
  completed: 'SUCCESS', partial: 'SUCCESS', failed: 'FAILED', cancelled: 'CANCELLED', timed_out: 'TIMED_OUT',
};
export const executionStatus = (s: RunStatus): ExecutionStatus => EXECUTION_STATUS[s];

/** The core statuses an execution status covers (for list filters). */
export const coreStatusesOf = (statuses: readonly ExecutionStatus[]): RunStatus[] =>
  (Object.keys(EXECUTION_STATUS) as RunStatus[]).filter((s) => statuses.includes(EXECUTION_STATUS[s]));

export const TASK_STATUSES = ['PENDING', 'WAITING', 'RUNNING', 'SUCCESS', 'FAILED', 'TIMED_OUT', 'SKIPPED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

const TASK_STATUS: Record<StepStatus, TaskStatus> = {
  pending: 'PENDING', waiting: 'WAITING', running: 'RUNNING', completed: 'SUCCESS', failed: 'FAILED', skipped: 'SKIPPED', cancelled: 'CANCELLED',
};

/** A failed step whose own `timeout` fired (the executors' message for it), rather than any failure mentioning time. */
function timedOut(step: StepRun, def: StepDefinition | undefined): boolean {
  return step.status === 'failed' && def?.timeout !== undefined && (step.error ?? '').replace(/^step /, '').startsWith(`timed out after ${def.timeout}s`);
}

/**
 * Which flow an execution ran: a flow document by its id and the revision the run snapshot
 * (a manifest flow type by its id, without revisions). `flowTypeOfFlowId` is the reverse, for the list's filter.
 */
export function flowIdentityOf(run: Run, registry: FlowRegistry): { flowId: string; flowName: string; flowRevision: number | null } {
  const def = run.definition ?? registry.find(run.taskType);
  if (def?.document) return { flowId: def.document.id, flowName: def.name, flowRevision: def.document.revision };
  return { flowId: run.taskType, flowName: def?.name ?? run.taskType, flowRevision: null };
}

/** The flow type a `flowId` names now (a document's current `<namespace>:<name>`, else the id itself). */
export function flowTypeOfFlowId(flowId: string, registry: FlowRegistry): string {
  return registry.list().find((d) => d.document?.id === flowId)?.id ?? flowId;
}

/** What an execution shows beyond its run row (read for many runs in one query, see `runFacts`). */
export interface ExecutionFacts {
  namespace: string | null;
  tasksTotal: number;
  tasksExecuted: number;
  triggerType: TriggerType;
}

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

/** The flow's inputs: the payload without `id`, which names the flow type in Flowgate's payloads. */
function inputsOf(run: Run): Record<string, unknown> {
  const { id: _flowType, ...inputs } = run.payload ?? {};
  return inputs;
}

/** An execution: the list item and the `execution` of a get. */
export function presentExecution(run: Run, facts: ExecutionFacts, registry: FlowRegistry) {
  return {
    id: run.id,
    ...flowIdentityOf(run, registry),
    namespace: facts.namespace,
    status: executionStatus(run.status),
    coreStatus: run.status,
    inputs: inputsOf(run),
    result: run.result ?? {},
    error: run.error ?? null,
    trigger: { type: facts.triggerType, by: run.requestedBy ?? run.triggeredBy, triggerId: triggerIdOf(run, facts.triggerType) },
    retryOf: run.rerunOfExecutionId ?? null,
    parentExecutionId: run.parentRunId ?? null,
    tasksTotal: facts.tasksTotal,
    tasksExecuted: facts.tasksExecuted,
    createdAt: run.createdAt.toISOString(),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    durationMs: run.startedAt && run.finishedAt ? run.finishedAt.getTime() - run.startedAt.getTime() : null,
  };
}
export type Execution = ReturnType<typeof presentExecution>;

/** A task's type as the plugin catalogue names it (`approval` → `flow.approval`). */
const canonicalType = (kind: string) => pluginFor(kind)?.id ?? kind;

/** A task that never started: pending while its run goes on; cancelled with a run stopped from outside (cancel, time limit); else skipped. */
function notStarted(status: RunStatus): TaskStatus {
  if (!isTerminalRun(status)) return 'PENDING';
  return status === 'cancelled' || status === 'timed_out' ? 'CANCELLED' : 'SKIPPED';
}

/** `error` on FAILED, TIMED_OUT, CANCELLED and a SKIPPED with a reason; `approvalId` on a task that asked for one. */
function presentTask(name: string, type: string, row: StepRun | undefined, def: StepDefinition | undefined, run: Run, approval: Approval | undefined) {
  const status: TaskStatus = row ? (timedOut(row, def) ? 'TIMED_OUT' : TASK_STATUS[row.status]) : notStarted(run.status);
  const error = row?.error && ['FAILED', 'TIMED_OUT', 'CANCELLED', 'SKIPPED'].includes(status) ? row.error : undefined;
  return {
    taskName: name,
    taskType: type,
    status,
    outputs: status === 'SUCCESS' ? JSON.stringify(row?.output ?? null) : null,
    startedAt: iso(row?.startedAt),
    finishedAt: iso(row?.finishedAt),
    ...(error !== undefined ? { error } : {}),
    attempt: row?.attempt ?? 0,
    ...(approval ? { approvalId: approval.id } : {}),
  };
}

/**
 * Every task of an execution in definition order (a flow step's stored kind is its plugin's engine
 * name, shown canonically), then any step the definition does not name (runs recorded by an
 * external engine). A cicd-mode run is one task, `pipeline`, standing for its pipeline run.
 */
export function presentTasks(run: Run, steps: StepRun[], approvals: Approval[]) {
  if (run.executionMode === 'cicd') {
    const ended = isTerminalRun(run.status);
    const status = executionStatus(run.status);
    const pending = run.status === 'queued';
    return [{
      taskName: 'pipeline', taskType: 'cicd.run',
      status: (pending ? 'PENDING' : status === 'PAUSED' ? 'RUNNING' : status) as TaskStatus,
      outputs: status === 'SUCCESS' ? JSON.stringify(run.result ?? {}) : null,
      startedAt: iso(run.startedAt), finishedAt: iso(run.finishedAt),
      ...(run.error && ended && status !== 'SUCCESS' ? { error: run.error } : {}),
      attempt: pending ? 0 : 1,
    }];
  }
  const rows = new Map(steps.map((st) => [st.stepRef, st]));
  // The newest approval of each step (a step retried asks again).
  const approvalOf = new Map<string, Approval>();
  for (const a of [...approvals].sort((x, y) => x.requestedAt.getTime() - y.requestedAt.getTime())) if (a.stepRef) approvalOf.set(a.stepRef, a);
  const defs = run.definition?.steps ?? [];
  const named = new Set(defs.map((d) => d.ref));
  return [
    ...defs.map((d) => presentTask(d.ref, canonicalType(d.type), rows.get(d.ref), d, run, approvalOf.get(d.ref))),
    ...steps.filter((st) => !named.has(st.stepRef)).map((st) => presentTask(st.stepRef, canonicalType(st.kind), st, undefined, run, approvalOf.get(st.stepRef))),
  ];
}

const LEVEL = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' } as const;

/** One log line: `task` is the step that wrote it (`step:<ref>`), null for the execution's own lines. */
export function presentLogLine(l: Pick<LogLine, 'seq' | 'at' | 'level' | 'source' | 'message'>) {
  return {
    seq: l.seq,
    timestamp: l.at.toISOString(),
    level: LEVEL[l.level] ?? 'INFO',
    task: l.source.startsWith('step:') ? l.source.slice('step:'.length) : null,
    message: l.message,
  };
}
