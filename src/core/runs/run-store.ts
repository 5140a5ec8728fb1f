import { LockMode, type MikroORM } from '@mikro-orm/postgresql';
import { columnsOf, rowTo, sql, sqlList, transaction } from '../../db/sql.js';
import { Run, RunSchema, type Callback } from '../../db/entities/run.js';
import { StepRun } from '../../db/entities/step-run.js';
import { AUDIT_INSERT_SELECT, auditParams, type Actor, type AuditEntry } from '../audit/audit-log.js';
import { isUuid, newId } from '../ids.js';
import { GroupCommit } from '../../util/group-commit.js';
import { deepMerge } from './deep-merge.js';
import { APPEND_LINES, countedLinesParams, INSERT_COUNTED_LINES, notifyLogSql, type NewLogLine } from '../logs/run-logs.js';
import { TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../status.js';
import { hasThread, TERMINAL_SQL, toldThroughOutbox, WAKE_PARENTS } from './run-sql.js';

const TERMINAL_STEP_SQL = sqlList(TERMINAL_STEP_STATUSES);
const OUTPUT_LIMIT = 64 * 1024;
/** A run's columns without its definition (large, and read only where it is needed). */
/** The columns a run is read with (its definition only when asked for). */
export const RUN_COLUMNS = columnsOf(RunSchema, ['definition']);
const RUN_READ = `select ${RUN_COLUMNS} from runs where id = ?`;
const RUN_READ_WITH_DEFINITION = `select ${RUN_COLUMNS}, definition from runs where id = ?`;

/** Caps what is stored of a step's output: a huge HTTP body must not bloat every later read. */
export function capOutput(output: unknown): unknown {
  if (output === undefined) return null;
  const text = JSON.stringify(output);
  if (text === undefined || text.length <= OUTPUT_LIMIT) return output ?? null;
  return { truncated: true, size: text.length, preview: text.slice(0, 4096) };
}

/** SQL: `step_runs.attempts` with every still-open (running or waiting) entry closed with the given status and error. */
const closeOpenAttempts = (status: string, error: string) =>
  `(select coalesce(jsonb_agg(case when a->>'status' in ('running', 'waiting')
      then a || jsonb_build_object('status', ${status}, 'error', ${error}, 'finishedAt', to_jsonb(now())) else a end order by i), '[]'::jsonb)
    from jsonb_array_elements(step_runs.attempts) with ordinality as t(a, i))`;

/** What a run's workflow carries, read when the engine takes the run. */
export type ClaimedRun = Pick<Run, 'id' | 'engineRunId' | 'taskType' | 'repositoryIdentifier' | 'triggeredBy' | 'payload' | 'definition'> & {
  /** The requester its approvals see: `requested_by`, else `triggered_by`. */
  requestedBy: string;
  parentRunId: string | null;
  callback: Callback | null;
};

/** A run written already leased to this process's executor: it needs no claim (see Executor.reserve). */
export interface IntakeLease {
  owner: string;
  token: string;
  leaseMs: number;
}

interface IntakeItem {
  run: Run;
  opening: NewLogLine;
  audit: AuditEntry;
  engineVersion: 'v2' | null;
  keepStepsOf: string | null;
  lease: IntakeLease | null;
}

/**
 * The intake's columns. A batch is one JSON array of rows, each an array of these values in this
 * order: one statement text for any batch size, and JSON values (payload, definition) travel as
 * JSON once instead of as text escaped into an array literal, which cost the server about 4 % of
 * its CPU at intake and PostgreSQL a second parse. Arrays, not objects keyed by column: building
 * an object per row was a tenth of what the server allocated at intake.
 */
const INTAKE_COLUMNS = [
  ['id', 'uuid'], ['engine_run_id', 'text'], ['task_type', 'text'], ['requested_task_type', 'text'], ['flow_path', 'text'], ['category', 'text'],
  ['execution_mode', 'text'], ['repository_identifier', 'text'], ['status', 'text'], ['payload', 'jsonb'], ['result', 'jsonb'], ['definition', 'jsonb'],
  ['triggered_by', 'text'], ['requested_by', 'text'], ['work_item_ref', 'jsonb'], ['callback', 'jsonb'], ['parent_run_id', 'uuid'],
  ['rerun_of_execution_id', 'uuid'], ['rerun_type', 'text'], ['schedule_path', 'text'], ['engine', 'text'], ['created_at', 'timestamptz'],
  ['updated_at', 'timestamptz'], ['tags', 'jsonb'], ['max_parallel_steps', 'int4'], ['engine_version', 'text'], ['lease_ms', 'float8'],
  ['expires_at', 'timestamptz'], ['lease_owner', 'text'], ['lease_token', 'uuid'], ['started_at', 'timestamptz'], ['trigger', 'jsonb'],
  ['line_level', 'text'], ['line_source', 'text'], ['line_group', 'text'], ['line_message', 'text'], ['keep_steps_of', 'uuid'],
  ['audit_id', 'uuid'], ['audit_actor', 'text'], ['audit_door', 'text'], ['audit_action', 'text'], ['audit_details', 'jsonb'],
] as const;

/** A flow definition's JSON, made once per definition: the registry replaces a definition, it never changes one. */
const definitionJson = new WeakMap<object, string>();

function jsonOfDefinition(definition: unknown): string {
  if (!definition || typeof definition !== 'object') return JSON.stringify(definition ?? null);
  let json = definitionJson.get(definition);
  if (json === undefined) definitionJson.set(definition, (json = JSON.stringify(definition)));
  return json;
}

const DEFINITION_COLUMN = INTAKE_COLUMNS.findIndex(([name]) => name === 'definition');

function intakeRows(items: IntakeItem[]): string {
  const rows = items.map(({ run, opening, audit, engineVersion, keepStepsOf, lease }) => [
    run.id, run.engineRunId, run.taskType, run.requestedTaskType ?? null, run.flowPath, run.category, run.executionMode, run.repositoryIdentifier, run.status,
    run.payload ?? null, run.result ?? {}, run.definition ?? null, run.triggeredBy, run.requestedBy ?? null, run.workItemRef ?? null, run.callback ?? null,
    run.parentRunId ?? null, run.rerunOfExecutionId ?? null, run.rerunType ?? null, run.schedulePath ?? null, run.engine, run.createdAt, run.updatedAt,
    run.tags ?? {}, run.maxParallelSteps ?? 0, engineVersion, lease?.leaseMs ?? null, run.expiresAt ?? null, lease?.owner ?? null, lease?.token ?? null,
    run.startedAt ?? null, run.trigger ?? null, opening.level, opening.source, opening.group, opening.message, keepStepsOf,
    newId(), audit.actor.name, audit.actor.door, audit.action, audit.details ?? null,
  ]);
  return `[${rows.map((r) => `[${r.map((v, c) => (c === DEFINITION_COLUMN ? jsonOfDefinition(v) : JSON.stringify(v ?? null))).join(',')}]`).join(',')}]`;
}

/** A row's value as its column's type; a JSON null is SQL null in every column, jsonb ones included. */
const intakeColumnSql = ([name, type]: (typeof INTAKE_COLUMNS)[number], c: number) =>
  type === 'jsonb' ? `nullif(r->${c}, 'null'::jsonb) as ${name}` : type === 'text' ? `r->>${c} as ${name}` : `(r->>${c})::${type} as ${name}`;

const INSERT_STARTED = `with i as (
    select ${INTAKE_COLUMNS.map(intakeColumnSql).join(', ')} from jsonb_array_elements(?::jsonb) as r),
  r as (
    insert into runs (id, engine_run_id, task_type, requested_task_type, flow_path, category, execution_mode, repository_identifier, status,
      payload, result, definition, triggered_by, requested_by, work_item_ref, callback, parent_run_id, rerun_of_execution_id, rerun_type, schedule_path,
      engine, log_seq, created_at, updated_at, tags, max_parallel_steps, engine_version, wake_at, expires_at, lease_owner, lease_token, started_at, trigger)
    select id, engine_run_id, task_type, requested_task_type, flow_path, category, execution_mode, repository_identifier, status,
      payload, result, definition, triggered_by, requested_by, work_item_ref, callback, parent_run_id, rerun_of_execution_id, rerun_type, schedule_path,
      engine, 1, created_at, updated_at, tags, max_parallel_steps, engine_version,
      -- Leased at intake: claimable again only when the lease expires (its holder died); otherwise at once.
      case when engine_version = 'v2' then now() + make_interval(secs => coalesce(lease_ms, 0) / 1000) end, expires_at, lease_owner, lease_token, started_at, trigger
    from i
    -- A taken id or engine run id (a replayed start) writes nothing for that run; the others go on.
    on conflict do nothing
    returning id),
  opening as (insert into log_lines (run_id, seq, at, level, source, log_group, message)
    select i.id, 1, now(), i.line_level, i.line_source, i.line_group, i.line_message from r join i using (id)),
  -- A run retry keeps the completed steps of the run it retries (in this statement: claimable only with them),
  -- except its project locks: the retry takes them again before the steps after them run.
  kept as (insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at, attempts)
    select gen_random_uuid(), i.id, s.step_ref, s.kind, s.status, s.attempt, s.deps_completed, s.deps_required, s.output, null, s.started_at, s.finished_at, s.attempts
    -- Lateral: one index lookup per retried run; a join would let the planner scan all of step_runs for every batch.
    from r join i using (id) cross join lateral (select * from step_runs s where s.run_id = i.keep_steps_of and s.status = 'completed' and s.kind <> 'flow.lock') s
    where i.keep_steps_of is not null),
  audit as (insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
    select i.audit_id, now(), i.audit_actor, i.audit_door, i.audit_action, 'run', i.id, i.audit_details from r join i using (id))
  -- A v2 run is claimable once committed; executors on other replicas are told after the commit
  -- (Executor.runsCommitted): a NOTIFY in every intake would serialize the commits.
  select id from r`;

/** Reads and conditional writes of runs and steps. Writes never move a terminal row. */
export class RunStore {
  constructor(private readonly orm: MikroORM) {}

  private em() {
    return this.orm.em.fork();
  }

  /** Records a new run (a child or a scheduled run: its workflow writes its first lines). */
  async insert(run: Run): Promise<void> {
    await this.em().insert(Run, run);
  }

  /**
   * Records a run started by a request, its first log line and its audit record in one statement:
   * every start comes here, so it is one round trip and no ORM. Starts that arrive together are
   * written together (one statement and one commit for the lot, see GroupCommit). False when the
   * run's id or engine run id is taken (a replayed start): nothing is written then.
   */
  insertStarted(run: Run, opening: NewLogLine, audit: AuditEntry, engineVersion: 'v2' | null = null, keepStepsOf: string | null = null,
    lease: IntakeLease | null = null): Promise<boolean> {
    if (lease) {
      run.status = 'running';
      run.startedAt = new Date();
    }
    return this.intake.submit({ run, opening, audit, engineVersion, keepStepsOf, lease });
  }

  private readonly intake = new GroupCommit<IntakeItem, boolean>(async (items) => {
    // Two starts of one id (a replayed delivery racing itself) must each get their own answer.
    if (items.length > 1 && new Set(items.map((i) => i.run.id)).size < items.length) throw new Error('one run id twice in a batch');
    const rows = await sql<{ id: string }>(this.orm, INSERT_STARTED, [intakeRows(items)], 'runs.insert-started');
    const inserted = new Set(rows.map((r) => r.id));
    return items.map((i) => inserted.has(i.run.id));
  }, { maxBatch: 64, maxInFlight: 2 });

  async findById(id: string, withDefinition = false): Promise<Run | null> {
    if (!isUuid(id)) return null;
    const [row] = await sql(this.orm, withDefinition ? RUN_READ_WITH_DEFINITION : RUN_READ, [id], withDefinition ? 'flowgate-run-read-definition' : 'flowgate-run-read');
    return row ? rowTo<Run>(RunSchema, row) : null;
  }

  /**
   * A run by its id, else by its engine run id: deterministic even when an external engine chose
   * an engine run id that is (or later becomes) some run's id.
   */
  async findByIdOrEngineId(id: string): Promise<Run | null> {
    const byId = await this.findById(id);
    if (byId) return byId;
    const [row] = await sql(this.orm, `select ${RUN_COLUMNS} from runs where engine_run_id = ?`, [id]);
    return row ? rowTo<Run>(RunSchema, row) : null;
  }

  /** Whether `id` is already taken, as a run id or an engine run id (external engines must not squat either). */
  async idTaken(id: string): Promise<boolean> {
    const rows = await sql<{ n: number }>(this.orm,
      `select count(*)::int as n from runs where engine_run_id = ?${isUuid(id) ? ' or id = ?::uuid' : ''}`, isUuid(id) ? [id, id] : [id]);
    return rows[0].n > 0;
  }

  async children(parentId: string): Promise<Run[]> {
    const rows = await sql(this.orm, `select ${RUN_COLUMNS} from runs where parent_run_id = ? order by created_at, id`, [parentId]);
    return rows.map((r) => rowTo<Run>(RunSchema, r));
  }

  /** The run and all its descendants (children, grandchildren, ...). */
  async subtreeIds(rootId: string): Promise<string[]> {
    const rows = await sql<{ id: string }>(this.orm,
      `with recursive tree as (select id from runs where id = ? union all select r.id from runs r join tree t on r.parent_run_id = t.id)
       select id from tree`, [rootId]);
    return rows.map((r) => r.id);
  }

  lastRunOfSchedule(schedulePath: string, repositoryIdentifier?: string): Promise<Run | null> {
    return this.em().findOne(Run, { schedulePath, ...(repositoryIdentifier ? { repositoryIdentifier } : {}) }, { orderBy: { createdAt: 'desc' } });
  }

  /**
   * Deep-merges into a run's result under a row lock (concurrent reporters do not lose keys). A
   * finished run's result is final: it is left as it is and its status returned instead.
   */
  async mergeResult(runId: string, patch: Record<string, unknown>): Promise<{ result: Record<string, unknown> } | { ended: RunStatus } | null> {
    return this.em().transactional(async (tx) => {
      const run = await tx.findOne(Run, { id: runId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!run) return null;
      if (TERMINAL_RUN_STATUSES.includes(run.status)) return { ended: run.status };
      run.result = deepMerge(run.result ?? {}, patch);
      await tx.flush();
      return { result: run.result };
    });
  }

  steps(runId: string): Promise<StepRun[]> {
    return this.em().find(StepRun, { runId }, { orderBy: { startedAt: 'asc', stepRef: 'asc' } });
  }

  stepsOfRuns(runIds: string[]): Promise<StepRun[]> {
    return this.em().find(StepRun, { runId: { $in: runIds } }, { orderBy: { startedAt: 'asc' } });
  }

  /**
   * Marks a run started (the first time) and returns what its workflow carries, in one statement;
   * null when the run is missing or already ended.
   */
  async claimForEngine(runId: string): Promise<ClaimedRun | null> {
    const rows = await sql<Record<string, any>>(this.orm,
      `update runs set status = case when status = 'queued' then 'running' else status end,
         started_at = coalesce(started_at, now()), updated_at = now()
       where id = ? and status not in (${TERMINAL_SQL})
       returning id, engine_run_id, task_type, repository_identifier, triggered_by, coalesce(requested_by, triggered_by) as requested_by, parent_run_id, payload, callback, definition`, [runId]);
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id, engineRunId: r.engine_run_id, taskType: r.task_type, repositoryIdentifier: r.repository_identifier,
      triggeredBy: r.triggered_by, requestedBy: r.requested_by, parentRunId: r.parent_run_id ?? null, payload: r.payload, callback: r.callback ?? null, definition: r.definition,
    };
  }

  /** Ends a run (if it has not ended) and writes its closing log lines in the same statement. */
  async finish(runId: string, status: RunStatus, result: Record<string, unknown> | undefined, error: string | null, lines: NewLogLine[] = []): Promise<boolean> {
    const [n, linesJson] = countedLinesParams(lines);
    const rows = await sql<{ n: number }>(this.orm,
      `with counter as (update runs set status = ?, finished_at = now(), updated_at = now(), error = ?, result = coalesce(?::jsonb, result), log_seq = log_seq + ?
         where id = ? and status not in (${TERMINAL_SQL}) returning id, log_seq),
       logged as (${INSERT_COUNTED_LINES})
       select count(*)::int as n, (select count(*) from (select ${notifyLogSql('counter.id')} from counter) t) as told from counter`,
      [status, error, result === undefined ? null : JSON.stringify(capOutput(result)), n, runId, n, linesJson]);
    return rows[0].n > 0;
  }

  /**
   * Cancels runs and their unfinished steps (their open attempts closed); returns the ids that
   * were actually cancelled. With `ending`, the same transaction does what a v2 run's end means
   * beyond its rows: its pending approvals closed (audited, its thread told through the outbox),
   * the parents waiting on it woken, and `ending.announce`'s thread told of its end after its
   * approvals' changes. A crash then leaves all of it or none: never a cancelled run whose
   * approval buttons stay live or whose thread is never told. Runs of the previous engine are
   * left to the caller's effects (nothing of theirs is written here but their rows).
   */
  async cancelRuns(runIds: string[], reason: string, note?: { runId: string; line: NewLogLine }, ending?: { actor: Actor; announce: string | null }): Promise<string[]> {
    if (!runIds.length) return [];
    // A run tree is locked by the cancel from the top and by an executor's flush of a child from
    // below (the child, then the parent it wakes): PostgreSQL breaks such a deadlock by aborting
    // one side, and a cancel so aborted runs again instead of failing its caller.
    return transaction(this.orm, async (q) => {
      const rows = await q<{ id: string }>(
        `update runs set status = 'cancelled', finished_at = now(), updated_at = now(), error = ?, wake_at = null
         where id = any(?::uuid[]) and status not in (${TERMINAL_SQL})
         returning id`, [reason, runIds]);
      const ids = rows.map((r) => r.id);
      if (!ids.length) return ids;
      await q(`update step_runs set status = 'cancelled', finished_at = now(), error = ?, attempts = ${closeOpenAttempts("'cancelled'", '?::text')}
        where run_id = any(?::uuid[]) and status not in (${TERMINAL_STEP_SQL})`, [reason, reason, ids]);
      if (note && ids.includes(note.runId)) await q(APPEND_LINES, [1, note.runId, ...countedLinesParams([note.line])]);
      if (ending) {
        await q(`with closed as (
            update approvals a set status = 'cancelled', resolved_at = now(), resolved_by = ?
            from runs r where r.id = a.run_id and r.engine_version = 'v2' and a.run_id = any(?::uuid[]) and a.status = 'pending'
            returning a.id, a.run_id, a.callback, ${toldThroughOutbox('r')} as thread),
          audited as (insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
            select gen_random_uuid(), now(), ?, ?, 'approval.cancelled', 'approval', id::text, jsonb_build_object('runId', run_id) from closed)
          insert into notices (run_id, kind, approval_id)
            select run_id, 'approval.updated', id from closed where thread and ${hasThread('callback')} order by id`,
        [ending.actor.name, ids, ending.actor.name, ending.actor.door]);
        if (ending.announce && ids.includes(ending.announce))
          await q(`insert into notices (run_id, kind) select id, 'run.finished' from runs r where id = ? and ${toldThroughOutbox('r')}`, [ending.announce]);
        await q(WAKE_PARENTS, [ids]);
        // Told at commit: outbox and executors look at once.
        await q(`select pg_notify('flowgate_notice', ''), pg_notify('flowgate_wake', '')`, []);
      }
      return ids;
    }, { retries: 3 });
  }

  async stepStarted(runId: string, ref: string, kind: string, attempt: number, depsRequired: number, workflowId: string): Promise<void> {
    await sql(this.orm,
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, started_at, workflow_id)
       values (?, ?, ?, ?, 'running', ?, ?, ?, now(), ?)
       on conflict (run_id, step_ref) do update set status = 'running', attempt = excluded.attempt, error = null,
         started_at = coalesce(step_runs.started_at, excluded.started_at), waiting_for = null, workflow_id = excluded.workflow_id
       where step_runs.status not in (${TERMINAL_STEP_SQL})`,
      [newId(), runId, ref, kind, attempt, depsRequired, depsRequired, workflowId]);
  }

  /** The workflow a started step runs in, where messages for it go. */
  async stepWorkflow(runId: string, ref: string): Promise<string | null> {
    const [step] = await sql<{ workflow_id: string | null }>(this.orm, 'select workflow_id from step_runs where run_id = ? and step_ref = ?', [runId, ref]);
    return step?.workflow_id ?? null;
  }

  /**
   * Parks a step (`waitingFor` what) and moves its run to `runStatus` from one of `from`, or, with
   * `waitingFor` null, resumes both: one statement either way.
   */
  async stepWaiting(runId: string, ref: string, waitingFor: string | null, runStatus: RunStatus, from: RunStatus[]): Promise<void> {
    await sql(this.orm,
      `with step as (update step_runs set status = ?, waiting_for = ? where run_id = ? and step_ref = ? and status not in (${TERMINAL_STEP_SQL}))
       update runs set status = ?, updated_at = now() where id = ? and status = any(?::text[])`,
      [waitingFor ? 'waiting' : 'running', waitingFor, runId, ref, runStatus, runId, from]);
  }

  /** Records a step's end; also creates the row for steps that never started (skipped). */
  async stepFinished(runId: string, ref: string, kind: string, status: StepStatus, output: unknown, error: string | null, depsRequired: number): Promise<void> {
    await sql(this.orm,
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at)
       values (?, ?, ?, ?, ?, 0, ?, ?, ?::jsonb, ?, null, now())
       on conflict (run_id, step_ref) do update set status = excluded.status, output = excluded.output, error = excluded.error,
         finished_at = now(), waiting_for = null
       where step_runs.status not in (${TERMINAL_STEP_SQL})`,
      [newId(), runId, ref, kind, status, depsRequired, depsRequired, JSON.stringify(capOutput(output)), error]);
  }

  /**
   * `stepStarted` that also opens the attempt's entry in `attempts`, in the same statement. A
   * replayed start replaces its own entry instead of adding a second one.
   */
  async stepAttemptStarted(runId: string, ref: string, kind: string, attempt: number, depsRequired: number, workflowId: string): Promise<void> {
    await sql(this.orm,
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, started_at, workflow_id, attempts)
       values (?, ?, ?, ?, 'running', ?, ?, ?, now(), ?,
         jsonb_build_array(jsonb_build_object('attempt', ?::int, 'status', 'running'::text, 'error', null::text, 'startedAt', to_jsonb(now()), 'finishedAt', null::text)))
       on conflict (run_id, step_ref) do update set status = 'running', attempt = excluded.attempt, error = null,
         started_at = coalesce(step_runs.started_at, excluded.started_at), waiting_for = null, workflow_id = excluded.workflow_id,
         attempts = (select coalesce(jsonb_agg(a order by i), '[]'::jsonb) from jsonb_array_elements(step_runs.attempts) with ordinality as t(a, i)
                     where (a->>'attempt')::int <> excluded.attempt) || excluded.attempts
       where step_runs.status not in (${TERMINAL_STEP_SQL})`,
      [newId(), runId, ref, kind, attempt, depsRequired, depsRequired, workflowId, attempt]);
  }

  /** Closes a step's open attempt as failed (a retry follows). */
  async stepAttemptFailed(runId: string, ref: string, error: string): Promise<void> {
    await sql(this.orm,
      `update step_runs set attempts = ${closeOpenAttempts('?::text', '?::text')} where run_id = ? and step_ref = ?`,
      ['failed', error, runId, ref]);
  }

  /** `stepFinished` that also closes the open attempt with the step's status and error, in the same statement. */
  async stepFinishedWithAttempts(runId: string, ref: string, kind: string, status: StepStatus, output: unknown, error: string | null, depsRequired: number): Promise<void> {
    await sql(this.orm,
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at)
       values (?, ?, ?, ?, ?, 0, ?, ?, ?::jsonb, ?, null, now())
       on conflict (run_id, step_ref) do update set status = excluded.status, output = excluded.output, error = excluded.error,
         finished_at = now(), waiting_for = null, attempts = ${closeOpenAttempts('excluded.status', 'excluded.error')}
       where step_runs.status not in (${TERMINAL_STEP_SQL})`,
      [newId(), runId, ref, kind, status, depsRequired, depsRequired, JSON.stringify(capOutput(output)), error]);
  }

  /**
   * Records an event for a v2 run and wakes it, in one statement (a retried delivery with the same
   * idempotency key is recorded once, and is a `duplicate` even after the run ended). Null when v2
   * does not carry the run; `ended` when it has ended.
   */
  async recordRunEvent(runId: string, e: { event: string; payload: unknown; sentBy: string; idempotencyKey?: string }): Promise<{ ended: RunStatus | null; recorded: boolean; duplicate: boolean } | null> {
    const rows = await sql<{ status: RunStatus; ended: boolean; recorded: number; seen: boolean }>(this.orm,
      `with run as (select id, status, status in (${TERMINAL_SQL}) as ended from runs where id = ? and engine_version = 'v2'),
       ins as (insert into run_events (id, run_id, event, payload, sent_by, idempotency_key)
         select ?, id, ?, ?::jsonb, ?, ? from run where not ended
         on conflict (run_id, idempotency_key) where idempotency_key is not null do nothing returning run_id),
       woke as (update runs set signal_seq = signal_seq + 1, updated_at = now(), wake_at = case when lease_token is null then now() else wake_at end
         where id in (select run_id from ins) returning id)
       select r.status, r.ended, (select count(*) from ins)::int as recorded,
         exists (select 1 from run_events d where d.run_id = r.id and d.idempotency_key = ?) as seen,
         (select count(*) from (select pg_notify('flowgate_wake', '') from woke) n)::int as woke
       from run r`,
      [runId, newId(), e.event, JSON.stringify(e.payload ?? null), e.sentBy, e.idempotencyKey ?? null, e.idempotencyKey ?? null]);
    const r = rows[0];
    if (!r) return null;
    return { ended: r.ended ? r.status : null, recorded: r.recorded > 0, duplicate: r.recorded === 0 && r.seen };
  }

  /**
   * Asks a v2 run whose flow compensates to stop: the executor cancels its running steps, runs the
   * compensations and ends it cancelled. False for any other run (it is cancelled directly).
   */
  async requestCancel(runId: string, reason: string, audit: AuditEntry): Promise<boolean> {
    // The request is audited in its own statement: the executor's `run.cancelled` always comes after it.
    const rows = await sql<{ id: string }>(this.orm,
      `with w as (update runs set cancel_requested = coalesce(cancel_requested, ?), signal_seq = signal_seq + 1, updated_at = now(),
           wake_at = case when lease_token is null then now() else wake_at end
         where id = ? and engine_version = 'v2' and status not in (${TERMINAL_SQL})
           and exists (select 1 from jsonb_array_elements(definition->'steps') s where s->>'compensates' is not null)
         returning id),
       audited as (${AUDIT_INSERT_SELECT} from w)
       select w.id, pg_notify('flowgate_wake', '') from w`, [reason, runId, ...auditParams(audit, 'run')]);
    return rows.length > 0;
  }

  /**
   * Queues a notice for a v2 run's thread in the outbox (and tells every replica's outbox). False
   * when the run is not a v2 run or has no thread to tell: the previous engine's runs are told
   * through their own workflows.
   */
  async queueNotice(runId: string, kind: 'run.finished' | 'approval.updated', approvalId: string | null = null): Promise<boolean> {
    const rows = await sql<{ id: string }>(this.orm,
      `with q as (insert into notices (run_id, kind, approval_id)
         select id, ?, ?::uuid from runs r where id = ? and ${toldThroughOutbox('r')} returning id)
       select q.id, pg_notify('flowgate_notice', '') from q`, [kind, approvalId, runId]);
    return rows.length > 0;
  }

  /** Wakes the v2 parents of runs that ended outside their executor (cancelled): their flow steps look again. */
  async wakeParentsOf(runIds: string[]): Promise<void> {
    if (!runIds.length) return;
    await sql(this.orm,
      `with w as (${WAKE_PARENTS} returning p.id)
       select count(*) from (select pg_notify('flowgate_wake', '') from w limit 1) n`, [runIds]);
  }

  async findWaitingStep(runId: string, waitingFor: string): Promise<StepRun | null> {
    return this.em().findOne(StepRun, { runId, waitingFor, status: 'waiting' });
  }

  /** Outputs of the run's steps so far, for expressions (`steps.<ref>.output`). */
  async stepOutputs(runId: string): Promise<Record<string, { status: StepStatus; output: unknown }>> {
    const steps = await sql<{ step_ref: string; status: StepStatus; output: unknown }>(this.orm, 'select step_ref, status, output from step_runs where run_id = ?', [runId]);
    return Object.fromEntries(steps.map((s) => [s.step_ref, { status: s.status, output: s.output ?? null }]));
  }
}
