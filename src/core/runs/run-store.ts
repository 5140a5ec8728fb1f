import { LockMode, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';
import { LogLine } from '../../db/entities/log-line.js';
import { Run, type Callback } from '../../db/entities/run.js';
import { StepRun } from '../../db/entities/step-run.js';
import { isUuid, newId } from '../ids.js';
import { deepMerge } from './deep-merge.js';
import { appendLines, countedLinesParams, INSERT_COUNTED_LINES, type NewLogLine } from '../logs/run-logs.js';
import { TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../status.js';

const notTerminalRun = { $nin: [...TERMINAL_RUN_STATUSES] };
const notTerminalStep = { $nin: [...TERMINAL_STEP_STATUSES] };
const TERMINAL_SQL = TERMINAL_RUN_STATUSES.map((s) => `'${s}'`).join(',');
const OUTPUT_LIMIT = 64 * 1024;

/** Caps what is stored of a step's output: a huge HTTP body must not bloat every later read. */
export function capOutput(output: unknown): unknown {
  if (output === undefined) return null;
  const text = JSON.stringify(output);
  if (text === undefined || text.length <= OUTPUT_LIMIT) return output ?? null;
  return { truncated: true, size: text.length, preview: text.slice(0, 4096) };
}

/** What a run's workflow carries, read when the engine takes the run. */
export type ClaimedRun = Pick<Run, 'id' | 'engineRunId' | 'taskType' | 'repositoryIdentifier' | 'triggeredBy' | 'payload' | 'definition'> & {
  parentRunId: string | null;
  callback: Callback | null;
};

/** Reads and conditional writes of runs and steps. Writes never move a terminal row. */
export class RunStore {
  constructor(private readonly orm: MikroORM) {}

  private em() {
    return this.orm.em.fork();
  }

  /**
   * Records a new run; with `opening`, also its first log line and whatever `alongside` writes
   * (an audit record), in one transaction.
   */
  async insert(run: Run, opening?: NewLogLine, alongside?: (tx: EntityManager) => Promise<void>): Promise<void> {
    if (!opening) {
      await this.em().insert(Run, run);
      return;
    }
    await this.em().transactional(async (tx) => {
      await tx.insert(Run, { ...run, logSeq: 1 });
      await tx.insert(LogLine, { runId: run.id, seq: 1, at: new Date(), level: opening.level, source: opening.source, group: opening.group, message: opening.message });
      await alongside?.(tx);
    });
  }

  findById(id: string, withDefinition = false): Promise<Run | null> {
    return this.em().findOne(Run, { id }, withDefinition ? { populate: ['definition'] } : {});
  }

  findByIdOrEngineId(id: string): Promise<Run | null> {
    return this.em().findOne(Run, { $or: [{ engineRunId: id }, ...(isUuid(id) ? [{ id }] : [])] });
  }

  children(parentId: string): Promise<Run[]> {
    return this.em().find(Run, { parentRunId: parentId }, { orderBy: { createdAt: 'asc' } });
  }

  /** The run and all its descendants (children, grandchildren, ...). */
  async subtreeIds(rootId: string): Promise<string[]> {
    const rows = await this.em().getConnection().execute<{ id: string }[]>(
      `with recursive tree as (select id from runs where id = ? union all select r.id from runs r join tree t on r.parent_run_id = t.id)
       select id from tree`, [rootId]);
    return rows.map((r) => r.id);
  }

  lastRunOfSchedule(schedulePath: string, repositoryIdentifier?: string): Promise<Run | null> {
    return this.em().findOne(Run, { schedulePath, ...(repositoryIdentifier ? { repositoryIdentifier } : {}) }, { orderBy: { createdAt: 'desc' } });
  }

  /** Deep-merges into a run's result under a row lock (concurrent reporters do not lose keys). */
  async mergeResult(runId: string, patch: Record<string, unknown>): Promise<Record<string, unknown> | null> {
    return this.em().transactional(async (tx) => {
      const run = await tx.findOne(Run, { id: runId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!run) return null;
      run.result = deepMerge(run.result ?? {}, patch);
      await tx.flush();
      return run.result;
    });
  }

  steps(runId: string): Promise<StepRun[]> {
    return this.em().find(StepRun, { runId }, { orderBy: { startedAt: 'asc', stepRef: 'asc' } });
  }

  stepsOfRuns(runIds: string[]): Promise<StepRun[]> {
    return this.em().find(StepRun, { runId: { $in: runIds } }, { orderBy: { startedAt: 'asc' } });
  }

  async setStatus(runId: string, status: RunStatus, from?: RunStatus[]): Promise<boolean> {
    const n = await this.em().nativeUpdate(Run, { id: runId, status: from ? { $in: from } : notTerminalRun }, { status });
    return n > 0;
  }

  /**
   * Marks a run started (the first time) and returns what its workflow carries, in one statement;
   * null when the run is missing or already ended.
   */
  async claimForEngine(runId: string): Promise<ClaimedRun | null> {
    const rows = await this.em().getConnection().execute<Record<string, any>[]>(
      `update runs set status = case when status = 'queued' then 'running' else status end,
         started_at = coalesce(started_at, now()), updated_at = now()
       where id = ? and status not in (${TERMINAL_SQL})
       returning id, engine_run_id, task_type, repository_identifier, triggered_by, parent_run_id, payload, callback, definition`, [runId]);
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id, engineRunId: r.engine_run_id, taskType: r.task_type, repositoryIdentifier: r.repository_identifier,
      triggeredBy: r.triggered_by, parentRunId: r.parent_run_id ?? null, payload: r.payload, callback: r.callback ?? null, definition: r.definition,
    };
  }

  /** Ends a run (if it has not ended) and writes its closing log lines in the same statement. */
  async finish(runId: string, status: RunStatus, result: Record<string, unknown> | undefined, error: string | null, lines: NewLogLine[] = []): Promise<boolean> {
    const [n, linesJson] = countedLinesParams(lines);
    const rows = await this.em().getConnection().execute<{ n: number }[]>(
      `with counter as (update runs set status = ?, finished_at = now(), updated_at = now(), error = ?, result = coalesce(?::jsonb, result), log_seq = log_seq + ?
         where id = ? and status not in (${TERMINAL_SQL}) returning id, log_seq),
       logged as (${INSERT_COUNTED_LINES})
       select count(*)::int as n from counter`,
      [status, error, result === undefined ? null : JSON.stringify(capOutput(result)), n, runId, n, linesJson]);
    return rows[0].n > 0;
  }

  /** Cancels runs and their unfinished steps; returns the ids that were actually cancelled. */
  async cancelRuns(runIds: string[], reason: string, note?: { runId: string; line: NewLogLine }): Promise<string[]> {
    if (!runIds.length) return [];
    const em = this.em();
    return em.transactional(async (tx) => {
      const rows = await tx.getConnection().execute<{ id: string }[]>(
        `update runs set status = 'cancelled', finished_at = now(), updated_at = now(), error = ?
         where id in (${runIds.map(() => '?').join(',')}) and status not in ('completed','partial','failed','cancelled','timed_out')
         returning id`, [reason, ...runIds], 'all', tx.getTransactionContext());
      const ids = rows.map((r) => r.id);
      if (ids.length) {
        await tx.nativeUpdate(StepRun, { runId: { $in: ids }, status: notTerminalStep }, { status: 'cancelled', finishedAt: new Date(), error: reason });
      }
      if (note && ids.includes(note.runId)) await appendLines(tx, note.runId, [note.line]);
      return ids;
    });
  }

  async stepStarted(runId: string, ref: string, kind: string, attempt: number, depsRequired: number, workflowId: string): Promise<void> {
    await this.em().getConnection().execute(
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, started_at, workflow_id)
       values (?, ?, ?, ?, 'running', ?, ?, ?, now(), ?)
       on conflict (run_id, step_ref) do update set status = 'running', attempt = excluded.attempt, error = null,
         started_at = coalesce(step_runs.started_at, excluded.started_at), waiting_for = null, workflow_id = excluded.workflow_id
       where step_runs.status not in ('completed','failed','skipped','cancelled')`,
      [newId(), runId, ref, kind, attempt, depsRequired, depsRequired, workflowId]);
  }

  /** The workflow a started step runs in, where messages for it go. */
  async stepWorkflow(runId: string, ref: string): Promise<string | null> {
    const step = await this.em().findOne(StepRun, { runId, stepRef: ref }, { fields: ['workflowId'] });
    return step?.workflowId ?? null;
  }

  async stepWaiting(runId: string, ref: string, waitingFor: string | null): Promise<void> {
    await this.em().nativeUpdate(StepRun, { runId, stepRef: ref, status: notTerminalStep },
      { status: waitingFor ? 'waiting' : 'running', waitingFor });
  }

  /** Records a step's end; also creates the row for steps that never started (skipped). */
  async stepFinished(runId: string, ref: string, kind: string, status: StepStatus, output: unknown, error: string | null, depsRequired: number): Promise<void> {
    await this.em().getConnection().execute(
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at)
       values (?, ?, ?, ?, ?, 0, ?, ?, ?::jsonb, ?, null, now())
       on conflict (run_id, step_ref) do update set status = excluded.status, output = excluded.output, error = excluded.error,
         finished_at = now(), waiting_for = null
       where step_runs.status not in ('completed','failed','skipped','cancelled')`,
      [newId(), runId, ref, kind, status, depsRequired, depsRequired, JSON.stringify(capOutput(output)), error]);
  }

  async findWaitingStep(runId: string, waitingFor: string): Promise<StepRun | null> {
    return this.em().findOne(StepRun, { runId, waitingFor, status: 'waiting' });
  }

  /** Outputs of the run's steps so far, for expressions (`steps.<ref>.output`). */
  async stepOutputs(runId: string): Promise<Record<string, { status: StepStatus; output: unknown }>> {
    const steps = await this.em().find(StepRun, { runId }, { fields: ['stepRef', 'status', 'output'] });
    return Object.fromEntries(steps.map((s) => [s.stepRef, { status: s.status, output: s.output ?? null }]));
  }
}
