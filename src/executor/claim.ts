import type pg from 'pg';
import type { EngineRun } from '../engine/engine-run.js';
import { sqlList } from '../db/sql.js';
import { runNotEnded, TERMINAL_SQL } from '../core/runs/run-sql.js';
import { approvalJsonSql } from '../core/approvals/approval-service.js';
import { TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../core/status.js';

const TERMINAL_STEP_SQL = sqlList(TERMINAL_STEP_STATUSES);

/** A step row as the claim returns it: what the interpreter rebuilds a run's state from. */
export interface ClaimedStep {
  ref: string;
  status: StepStatus;
  output: unknown;
  error: string | null;
  attempt: number;
  waitingFor: string | null;
  /** Who skipped or force-completed it through run control, or null. */
  overriddenBy: string | null;
  /** The approval a waiting approval step waits for, as the claim read it (its row as JSON). */
  approval?: Record<string, unknown> | null;
}

/** An event delivered to the run that no step has taken yet (oldest first). */
export interface ClaimedEvent {
  id: string;
  event: string;
  payload: unknown;
  sentBy: string;
  /** The step that took it, when its outcome was not written yet (it takes the same one again). */
  consumedBy: string | null;
}

/** A child run of the run (started by a `flow` step), as it stands. */
export interface ClaimedChild {
  id: string;
  taskType: string;
  status: RunStatus;
  result: Record<string, unknown> | null;
  error: string | null;
}

/** A run an executor holds: its lease token fences every write it makes for the run. */
export interface LeasedRun extends Omit<EngineRun, 'engineRunId'> {
  token: string;
  signalSeq: string;
  steps: ClaimedStep[];
  events: ClaimedEvent[];
  children: ClaimedChild[];
  /** Why the run was asked to stop (it compensates first), or null. */
  cancelRequested: string | null;
  /** When the run times out (ISO), or null. */
  expiresAt: string | null;
  /** What started the run, as its steps read it (`trigger.*`), or null. */
  trigger: Record<string, unknown> | null;
}

/**
 * One statement per batch: takes up to `$2` runs whose `wake_at` has come (new, timer due, or
 * a dead executor's lease expired), leases them to `$1` until now + `$3` ms (the lease expiry is
 * their new `wake_at`), and returns them with their step rows. SKIP LOCKED lets executors on
 * other replicas claim side by side without waiting on each other.
 */
const CLAIM = `with picked as (
    select id from runs
    where wake_at <= now() and engine_version = 'v2' and status not in (${TERMINAL_SQL})
      -- A paused run waits for its resume, unless it is to stop or has expired; a control action holds it briefly.
      and (status <> 'paused' or cancel_requested is not null or expires_at <= now())
      and (control_hold_until is null or control_hold_until < now())
    order by wake_at limit $2 for update skip locked),
  claimed as (
    update runs r set lease_owner = $1, lease_token = gen_random_uuid(), wake_at = now() + make_interval(secs => $3::float8 / 1000),
      status = case when r.status in ('queued', 'waiting', 'suspended') then 'running' else r.status end,
      started_at = coalesce(r.started_at, now()), updated_at = now()
    from picked where r.id = picked.id
    returning r.id, r.lease_token, r.signal_seq, r.task_type, r.repository_identifier, r.triggered_by,
      coalesce(r.requested_by, r.triggered_by) as requested_by, r.parent_run_id, r.payload, r.callback, r.definition, r.cancel_requested, r.expires_at, r.trigger)
  select c.*, (select coalesce(jsonb_agg(jsonb_build_object('ref', s.step_ref, 'status', s.status, 'output', s.output, 'error', s.error, 'attempt', s.attempt, 'waitingFor', s.waiting_for, 'overriddenBy', s.overridden_by,
        -- A waiting approval step's approval, read with the claim (the row is the truth: every claim reads it).
        'approval', case when s.status = 'waiting' and s.waiting_for like 'approval:%' then
          ${approvalJsonSql('substr(s.waiting_for, 10)::uuid')} end)
      order by s.finished_at nulls last, s.step_ref), '[]'::jsonb) from step_runs s where s.run_id = c.id) as steps,
    (select coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'event', e.event, 'payload', e.payload, 'sentBy', e.sent_by, 'consumedBy', e.consumed_by) order by e.created_at, e.id), '[]'::jsonb)
      from run_events e where e.run_id = c.id and (e.consumed_by is null or not exists (
        select 1 from step_runs s where s.run_id = c.id and s.step_ref = e.consumed_by and s.status in (${TERMINAL_STEP_SQL})))) as events,
    (select coalesce(jsonb_agg(jsonb_build_object('id', ch.id, 'taskType', ch.task_type, 'status', ch.status, 'result', ch.result, 'error', ch.error)), '[]'::jsonb)
      from runs ch where ch.parent_run_id = c.id) as children
  from claimed c`;

export async function claimRuns(pool: pg.Pool, owner: string, limit: number, leaseMs: number): Promise<LeasedRun[]> {
  const { rows } = await pool.query({ name: 'flowgate-v2-claim', text: CLAIM, values: [owner, limit, leaseMs] });
  return rows.map((r) => ({
    id: r.id, token: r.lease_token, signalSeq: String(r.signal_seq), taskType: r.task_type, repositoryIdentifier: r.repository_identifier,
    triggeredBy: r.triggered_by, requestedBy: r.requested_by, parentRunId: r.parent_run_id ?? null, payload: r.payload,
    callback: r.callback ?? null, definition: r.definition, steps: r.steps, events: r.events, children: r.children, cancelRequested: r.cancel_requested ?? null,
    expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null, trigger: r.trigger ?? null,
  }));
}

/** Extends the leases of runs still being worked on (one statement for all of them); returns those still held. */
export async function extendLeases(pool: pg.Pool, runs: { id: string; token: string }[], leaseMs: number): Promise<Set<string>> {
  if (!runs.length) return new Set();
  const { rows } = await pool.query({
    name: 'flowgate-v2-heartbeat',
    text: `update runs r set wake_at = now() + make_interval(secs => $2::float8 / 1000)
      from jsonb_to_recordset($1::jsonb) as t(id uuid, token uuid)
      where r.id = t.id and r.lease_token = t.token and ${runNotEnded('r')} returning r.id`,
    values: [JSON.stringify(runs), leaseMs],
  });
  return new Set(rows.map((r) => r.id as string));
}

/**
 * At start-up: runs still leased to this executor's name were held by its predecessor, which is
 * gone (executor names are per replica). They are made claimable now instead of when the dead
 * leases expire; the claim's new token fences any late write of the old holder.
 */
export async function recoverOwnLeases(pool: pg.Pool, owner: string): Promise<number> {
  const { rowCount } = await pool.query({
    name: 'flowgate-v2-recover',
    text: `update runs set wake_at = now() where lease_owner = $1 and engine_version = 'v2' and status not in (${TERMINAL_SQL}) and wake_at > now()`,
    values: [owner],
  });
  return rowCount ?? 0;
}
