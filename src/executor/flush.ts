import type pg from 'pg';
import { capOutput } from '../core/runs/run-store.js';
import { LOG_CHANNEL, type NewLogLine } from '../core/logs/run-logs.js';
import { newId } from '../core/ids.js';
import { sqlList } from '../db/sql.js';
import { runNotEnded } from '../core/runs/run-sql.js';
import { PARENT_ENDED, TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../core/status.js';

const TERMINAL_STEP_SQL = sqlList(TERMINAL_STEP_STATUSES);
const MAX_MESSAGE = 16_000;

export interface StepWrite {
  ref: string;
  kind: string;
  status: StepStatus;
  attempt: number;
  depsRequired: number;
  output: unknown;
  error: string | null;
  /** What a parked (`waiting`) step waits for: `time:…`, `approval:<id>`. */
  waitingFor?: string | null;
  /** This claim's attempts of the step; they replace the entries of the same attempt numbers. */
  attempts?: StepAttemptEntry[];
}

export interface StepAttemptEntry {
  attempt: number;
  status: 'running' | StepStatus;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

/** A child run a `flow` step starts: created by its parent's flush, claimable at once. */
export interface NewChildRun {
  id: string;
  engineRunId: string;
  taskType: string;
  requestedTaskType: string | null;
  flowPath: string;
  category: string;
  executionMode: string;
  repositoryIdentifier: string;
  payload: Record<string, unknown>;
  definition: unknown;
  triggeredBy: string;
  requestedBy: string | null;
  callback: unknown;
  maxParallelSteps: number;
  expiresAt: string | null;
}

/** Everything one run has to write since its last flush: merged in memory, one row of the batch. */
export interface RunFlush {
  id: string;
  token: string;
  /** The run's `signal_seq` when it was claimed: a higher one at release means a wake-up came meanwhile. */
  seenSignal: string;
  steps: StepWrite[];
  lines: NewLogLine[];
  end?: { status: RunStatus; error: string | null; result: Record<string, unknown> };
  /** The run's status while it is parked (`waiting` for a timer, `suspended` for a person). */
  parked?: RunStatus;
  audit?: { action: string; details?: Record<string, unknown> };
  /** Give the lease back (the run ended or parked); otherwise the executor keeps working on it. */
  release: boolean;
  /** When the run should next be looked at once released (a timer), or null. */
  wakeAt: string | null;
  /** The run's parent: woken when this run ends. */
  parentRunId?: string | null;
  /** Child runs to create (ids derived from the run, the step and the index: created once). */
  children?: NewChildRun[];
  /** Events taken by `wait_for_event` steps. */
  consumed?: { id: string; ref: string }[];
  /** The run was claimed with its cancel already requested (its end is the cancel's); otherwise an end is deferred. */
  cancelSeen?: boolean;
  /** Notices for the run's thread, queued in the outbox with this write (its end's is added by the flush). */
  notices?: { kind: 'approval.requested'; approvalId: string }[];
}

/** The run asked to stop after this claim: its end waits for another claim to compensate. */
const DEFER = `(i.status is not null and r.cancel_requested is not null and not i.cancelseen)`;
const ENDS = `(i.status is not null and not ${DEFER})`;
/** A child of the run ends in the same batch: the run is woken as a signal would. */
const CHILD_ENDS = `exists (select 1 from input c where c.parent = r.id and c.status is not null)`;

/**
 * One statement for a whole batch. Each run's row is written only where its lease token still
 * matches and the run has not ended (a cancel, or another executor that took over an expired
 * lease, makes the write a no-op for that run); its step rows, counted log lines, audit record,
 * new child runs and taken events hang off the runs that passed the fence. A terminal step row
 * is never moved. A run that ends wakes its parent, cancels its unfinished descendants and
 * releases its project locks, waking the runs waiting for them.
 */
const FLUSH = `with input as (
    select * from jsonb_to_recordset($1::jsonb) as t(id uuid, token uuid, seen bigint, nlines int, lines jsonb, steps jsonb,
      status text, error text, result jsonb, audit jsonb, release boolean, wake timestamptz, parked text,
      parent uuid, children jsonb, consumed jsonb, cancelseen boolean, notices jsonb)),
  fenced as (
    update runs r set log_seq = r.log_seq + i.nlines, updated_at = now(),
      status = case when ${ENDS} then i.status when r.status = 'paused' then r.status else coalesce(i.parked, r.status) end,
      error = case when ${ENDS} then i.error else r.error end,
      result = case when ${ENDS} then i.result else r.result end,
      finished_at = case when ${ENDS} then now() else r.finished_at end,
      signal_seq = r.signal_seq + case when ${CHILD_ENDS} then 1 else 0 end,
      lease_owner = case when i.release then null else r.lease_owner end,
      lease_token = case when i.release then null else r.lease_token end,
      wake_at = case when not i.release then r.wake_at when ${ENDS} then null
        when ${DEFER} or (r.cancel_requested is not null and not i.cancelseen) then now()
        -- A paused run sleeps until it is resumed (which wakes it) or expires.
        when r.status = 'paused' then r.expires_at
        when r.signal_seq > i.seen or ${CHILD_ENDS} then now() else i.wake end
    from input i
    where r.id = i.id and r.lease_token = i.token and ${runNotEnded('r')}
    returning r.id, r.log_seq, i.nlines, i.lines, i.steps, i.audit, i.children, i.consumed, i.notices, r.parent_run_id, ${ENDS} as ended, ${DEFER} as deferred,
      (i.release and r.wake_at <= now()) as due,
      (r.callback is not null and r.callback->>'type' <> 'none') as announced,
      -- The run must hold: paused, asked to stop, or wanted by a control action (the executor stops starting steps).
      -- (A paused run claimed to be cancelled or timed out is not held: that claim ends it.)
      ((r.status = 'paused' and r.cancel_requested is null and (r.expires_at is null or r.expires_at > now()))
        or (r.cancel_requested is not null and not i.cancelseen) or r.control_hold_until > now()) as hold),
  stepped as (
    insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at, waiting_for, attempts)
    select s.id, f.id, s.ref, s.kind, s.status, s.attempt, s.deps, s.deps, s.output, s.error,
      case when s.attempt > 0 then now() end, case when s.status in (${TERMINAL_STEP_SQL}) then now() end, s.waiting_for, coalesce(s.attempts, '[]'::jsonb)
    from fenced f, jsonb_to_recordset(f.steps) as s(id uuid, ref text, kind text, status text, attempt int, deps int, output jsonb, error text, waiting_for text, attempts jsonb)
    on conflict (run_id, step_ref) do update set status = excluded.status, attempt = excluded.attempt, output = excluded.output,
      error = excluded.error, finished_at = excluded.finished_at, started_at = coalesce(step_runs.started_at, excluded.started_at), waiting_for = excluded.waiting_for,
      -- Earlier attempts (an earlier claim's, or those kept by a step retry) stay; this claim's replace their own numbers.
      attempts = (select coalesce(jsonb_agg(a order by i), '[]'::jsonb) from jsonb_array_elements(step_runs.attempts) with ordinality as t(a, i)
        where not exists (select 1 from jsonb_array_elements(excluded.attempts) n where n->'attempt' = a->'attempt')) || excluded.attempts
    where step_runs.status not in (${TERMINAL_STEP_SQL})),
  logged as (
    insert into log_lines (run_id, seq, at, level, source, log_group, message)
    select f.id, f.log_seq - f.nlines + l.i, now(), l.level, l.source, l."group", l.message
    from fenced f, jsonb_to_recordset(f.lines) as l(i int, level text, source text, "group" text, message text)
    returning run_id),
  audited as (
    insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
    select (f.audit->>'id')::uuid, now(), 'system', 'engine', f.audit->>'action', 'run', f.id::text, f.audit->'details'
    from fenced f where f.audit is not null and f.ended),
  taken as (
    update run_events e set consumed_by = c.ref
    from fenced f, jsonb_to_recordset(f.consumed) as c(id uuid, ref text)
    where e.id = c.id and e.run_id = f.id and e.consumed_by is null),
  -- The thread hears of the run's end (and of approvals it asked) through the outbox, in this statement.
  noticed as (
    insert into notices (run_id, kind, approval_id)
    select f.id, x.kind, x.approval_id from fenced f, jsonb_to_recordset(f.notices) as x(kind text, approval_id uuid) where f.announced
    union all select f.id, 'run.finished', null from fenced f where f.ended and f.announced
    returning run_id),
  created as (
    insert into runs (id, engine_run_id, task_type, requested_task_type, flow_path, category, execution_mode, repository_identifier, status,
      payload, result, definition, triggered_by, requested_by, callback, parent_run_id, engine, log_seq, created_at, updated_at, tags, max_parallel_steps,
      engine_version, wake_at, expires_at)
    select c.id, c.engine_run_id, c.task_type, c.requested_task_type, c.flow_path, c.category, c.execution_mode, c.repository_identifier, 'queued',
      -- A microsecond apart, in item order: children listed by creation come in the order they were asked.
      c.payload, '{}'::jsonb, c.definition, c.triggered_by, c.requested_by, c.callback, f.id, 'flowgate', 1, now() + make_interval(secs => c.seq / 1e6), now(), '{}'::jsonb, c.max_parallel_steps,
      'v2', now(), c.expires_at
    from fenced f, jsonb_to_recordset(f.children) as c(id uuid, engine_run_id text, task_type text, requested_task_type text, flow_path text, category text,
      execution_mode text, repository_identifier text, payload jsonb, definition jsonb, triggered_by text, requested_by text, callback jsonb, max_parallel_steps int,
      expires_at timestamptz, seq int)
    on conflict do nothing
    returning id, task_type, parent_run_id),
  opened as (
    insert into log_lines (run_id, seq, at, level, source, log_group, message)
    select id, 1, now(), 'info', 'engine', 'run', 'Run of ' || task_type || ' started by parent run ' || parent_run_id from created),
  subtree as (
    with recursive t(id) as (
      select ch.id from runs ch join fenced f on ch.parent_run_id = f.id where f.ended
      union all select ch.id from runs ch join t on ch.parent_run_id = t.id)
    select id from t),
  -- The run's project locks (flow.lock) end with it; the runs parked on them are woken below.
  unlocked as (
    delete from flow_locks l using fenced f where f.ended and l.run_id = f.id
    returning l.repository_identifier, l.lock_key),
  woken as (
    update runs p set signal_seq = p.signal_seq + 1, updated_at = now(), wake_at = case when p.lease_token is null then now() else p.wake_at end
    from (select parent_run_id from fenced where ended and parent_run_id is not null
      union select s.run_id from unlocked u join step_runs s on s.status = 'waiting' and s.waiting_for = 'lock:' || u.lock_key
        join runs w on w.id = s.run_id and w.repository_identifier = u.repository_identifier) f
    where p.id = f.parent_run_id and p.engine_version = 'v2' and ${runNotEnded('p')}
      and not exists (select 1 from fenced x where x.id = p.id) and not exists (select 1 from subtree t where t.id = p.id)
    returning p.id),
  orphaned as (
    update runs ch set status = 'cancelled', error = ${sqlList([PARENT_ENDED])}, finished_at = now(), updated_at = now(), wake_at = null
    from subtree t where ch.id = t.id and ${runNotEnded('ch')} and not exists (select 1 from fenced x where x.id = ch.id)
    returning ch.id),
  orphan_steps as (
    update step_runs s set status = 'cancelled', finished_at = now(), error = ${sqlList([PARENT_ENDED])}
    from orphaned o where s.run_id = o.id and s.status not in (${TERMINAL_STEP_SQL}))
  select f.id, f.hold, f.due, exists (select 1 from noticed where noticed.run_id = f.id) as noticed,
    -- An approval still pending when its run ends can no longer matter: the executor closes it as stale.
    (f.ended and exists (select 1 from approvals a where a.run_id = f.id and a.status = 'pending')) as open_approvals,
    (select count(*) from (select pg_notify('flowgate_notice', $2) from noticed limit 1) m) as notices_told,
    -- Log streams on every replica read again: one notification for the whole batch.
    (select count(*) from (select pg_notify('${LOG_CHANNEL}', '') from logged limit 1) g) as logs_told, (select count(*) from (select pg_notify('flowgate_wake', $2) from (select id from created union all select id from woken) w limit 1) n) as notified
  from fenced f where not f.deferred`;

/** A run's writes passed the fence; `hold` says the run must not start anything new. */
export interface FlushAnswer {
  hold: boolean;
  /** Notices were queued for the run's thread. */
  noticed: boolean;
  /** The run ended with approvals still pending. */
  openApprovals: boolean;
  /** The batch created child runs or woke runs: executors were told. */
  woke: boolean;
  /** The run was released but is claimable at once (a wake-up came while it was held, or it is to stop). */
  due: boolean;
}

/**
 * Writes a batch; answers for the runs whose writes passed the fence. A run whose end was
 * deferred by a cancel request is left out: for its executor the work is over, not the run.
 */
/** `mark`: the payload of the batch's NOTIFYs, the flushing executor's (its own listener ignores them). */
export async function flushRuns(pool: pg.Pool, batch: RunFlush[], mark: string): Promise<Map<string, FlushAnswer>> {
  if (!batch.length) return new Map();
  const rows = batch.map((f) => ({
    id: f.id, token: f.token, seen: f.seenSignal, nlines: f.lines.length,
    lines: f.lines.map((l, i) => ({ i: i + 1, level: l.level, source: l.source, group: l.group, message: l.message.slice(0, MAX_MESSAGE) })),
    // A step written twice since the last flush (parked, then cancelled) is written once, as it ended up.
    steps: [...new Map(f.steps.map((s) => [s.ref, s])).values()].map((s) => ({ id: newId(), ref: s.ref, kind: s.kind, status: s.status, attempt: s.attempt, deps: s.depsRequired, output: capOutput(s.output), error: s.error, waiting_for: s.waitingFor ?? null, attempts: s.attempts ?? null })),
    status: f.end?.status ?? null, error: f.end?.error ?? null, result: f.end ? capOutput(f.end.result) : null,
    audit: f.audit ? { id: newId(), action: f.audit.action, details: f.audit.details ?? null } : null,
    release: f.release, wake: f.wakeAt, parked: f.parked ?? null, parent: f.parentRunId ?? null,
    children: (f.children ?? []).map((c, seq) => ({ seq,
      id: c.id, engine_run_id: c.engineRunId, task_type: c.taskType, requested_task_type: c.requestedTaskType, flow_path: c.flowPath, category: c.category,
      execution_mode: c.executionMode, repository_identifier: c.repositoryIdentifier, payload: c.payload, definition: c.definition, triggered_by: c.triggeredBy,
      requested_by: c.requestedBy, callback: c.callback, max_parallel_steps: c.maxParallelSteps, expires_at: c.expiresAt,
    })),
    consumed: f.consumed ?? [], cancelseen: f.cancelSeen ?? false,
    notices: (f.notices ?? []).map((n) => ({ kind: n.kind, approval_id: n.approvalId })),
  }));
  const { rows: done } = await pool.query({ name: 'flowgate-v2-flush', text: FLUSH, values: [JSON.stringify(rows), mark] });
  return new Map(done.map((r) => [r.id as string, { hold: r.hold === true, noticed: r.noticed === true, openApprovals: r.open_approvals === true, woke: Number(r.notified) > 0, due: r.due === true }]));
}
