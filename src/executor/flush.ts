import type pg from 'pg';
import { capOutput } from '../core/runs/run-store.js';
import type { NewLogLine } from '../core/logs/run-logs.js';
import { newId } from '../core/ids.js';
import { sqlList } from '../db/sql.js';
import { TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../core/status.js';

const TERMINAL_SQL = sqlList(TERMINAL_RUN_STATUSES);
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
}

/**
 * One statement for a whole batch. Each run's row is written only where its lease token still
 * matches and the run has not ended (a cancel, or another executor that took over an expired
 * lease, makes the write a no-op for that run); its step rows, counted log lines and audit record
 * hang off the runs that passed the fence. A terminal step row is never moved.
 */
const FLUSH = `with input as (
    select * from jsonb_to_recordset($1::jsonb) as t(id uuid, token uuid, seen bigint, nlines int, lines jsonb, steps jsonb,
      status text, error text, result jsonb, audit jsonb, release boolean, wake timestamptz, parked text)),
  fenced as (
    update runs r set log_seq = r.log_seq + i.nlines, updated_at = now(),
      status = coalesce(i.status, i.parked, r.status),
      error = case when i.status is null then r.error else i.error end,
      result = coalesce(i.result, r.result),
      finished_at = case when i.status is null then r.finished_at else now() end,
      lease_owner = case when i.release then null else r.lease_owner end,
      lease_token = case when i.release then null else r.lease_token end,
      wake_at = case when not i.release then r.wake_at when i.status is not null then null when r.signal_seq > i.seen then now() else i.wake end
    from input i
    where r.id = i.id and r.lease_token = i.token and r.status not in (${TERMINAL_SQL})
    returning r.id, r.log_seq, i.nlines, i.lines, i.steps, i.audit),
  stepped as (
    insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, started_at, finished_at, waiting_for)
    select s.id, f.id, s.ref, s.kind, s.status, s.attempt, s.deps, s.deps, s.output, s.error,
      case when s.attempt > 0 then now() end, case when s.status in (${TERMINAL_STEP_SQL}) then now() end, s.waiting_for
    from fenced f, jsonb_to_recordset(f.steps) as s(id uuid, ref text, kind text, status text, attempt int, deps int, output jsonb, error text, waiting_for text)
    on conflict (run_id, step_ref) do update set status = excluded.status, attempt = excluded.attempt, output = excluded.output,
      error = excluded.error, finished_at = excluded.finished_at, started_at = coalesce(step_runs.started_at, excluded.started_at), waiting_for = excluded.waiting_for
    where step_runs.status not in (${TERMINAL_STEP_SQL})),
  logged as (
    insert into log_lines (run_id, seq, at, level, source, log_group, message)
    select f.id, f.log_seq - f.nlines + l.i, now(), l.level, l.source, l."group", l.message
    from fenced f, jsonb_to_recordset(f.lines) as l(i int, level text, source text, "group" text, message text)),
  audited as (
    insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
    select (f.audit->>'id')::uuid, now(), 'system', 'engine', f.audit->>'action', 'run', f.id::text, f.audit->'details'
    from fenced f where f.audit is not null)
  select id from fenced`;

/** Writes a batch; returns the ids of the runs whose writes passed the fence. */
export async function flushRuns(pool: pg.Pool, batch: RunFlush[]): Promise<Set<string>> {
  if (!batch.length) return new Set();
  const rows = batch.map((f) => ({
    id: f.id, token: f.token, seen: f.seenSignal, nlines: f.lines.length,
    lines: f.lines.map((l, i) => ({ i: i + 1, level: l.level, source: l.source, group: l.group, message: l.message.slice(0, MAX_MESSAGE) })),
    steps: f.steps.map((s) => ({ id: newId(), ref: s.ref, kind: s.kind, status: s.status, attempt: s.attempt, deps: s.depsRequired, output: capOutput(s.output), error: s.error, waiting_for: s.waitingFor ?? null })),
    status: f.end?.status ?? null, error: f.end?.error ?? null, result: f.end ? capOutput(f.end.result) : null,
    audit: f.audit ? { id: newId(), action: f.audit.action, details: f.audit.details ?? null } : null,
    release: f.release, wake: f.wakeAt, parked: f.parked ?? null,
  }));
  const { rows: done } = await pool.query({ name: 'flowgate-v2-flush', text: FLUSH, values: [JSON.stringify(rows)] });
  return new Set(done.map((r) => r.id as string));
}
