import type pg from 'pg';
import type { EngineRun } from '../engine/engine-run.js';
import { sqlList } from '../db/sql.js';
import { TERMINAL_RUN_STATUSES, type StepStatus } from '../core/status.js';

const TERMINAL_SQL = sqlList(TERMINAL_RUN_STATUSES);

/** A step row as the claim returns it: what the interpreter rebuilds a run's state from. */
export interface ClaimedStep {
  ref: string;
  status: StepStatus;
  output: unknown;
  error: string | null;
  attempt: number;
  waitingFor: string | null;
}

/** A run an executor holds: its lease token fences every write it makes for the run. */
export interface LeasedRun extends Omit<EngineRun, 'engineRunId'> {
  token: string;
  signalSeq: string;
  steps: ClaimedStep[];
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
    order by wake_at limit $2 for update skip locked),
  claimed as (
    update runs r set lease_owner = $1, lease_token = gen_random_uuid(), wake_at = now() + make_interval(secs => $3::float8 / 1000),
      status = case when r.status in ('queued', 'waiting', 'suspended') then 'running' else r.status end,
      started_at = coalesce(r.started_at, now()), updated_at = now()
    from picked where r.id = picked.id
    returning r.id, r.lease_token, r.signal_seq, r.task_type, r.repository_identifier, r.triggered_by,
      coalesce(r.requested_by, r.triggered_by) as requested_by, r.parent_run_id, r.payload, r.callback, r.definition)
  select c.*, (select coalesce(jsonb_agg(jsonb_build_object('ref', s.step_ref, 'status', s.status, 'output', s.output, 'error', s.error, 'attempt', s.attempt, 'waitingFor', s.waiting_for)
      order by s.finished_at nulls last, s.step_ref), '[]'::jsonb) from step_runs s where s.run_id = c.id) as steps
  from claimed c`;

export async function claimRuns(pool: pg.Pool, owner: string, limit: number, leaseMs: number): Promise<LeasedRun[]> {
  const { rows } = await pool.query({ name: 'flowgate-v2-claim', text: CLAIM, values: [owner, limit, leaseMs] });
  return rows.map((r) => ({
    id: r.id, token: r.lease_token, signalSeq: String(r.signal_seq), taskType: r.task_type, repositoryIdentifier: r.repository_identifier,
    triggeredBy: r.triggered_by, requestedBy: r.requested_by, parentRunId: r.parent_run_id ?? null, payload: r.payload,
    callback: r.callback ?? null, definition: r.definition, steps: r.steps,
  }));
}

/** Extends the leases of runs still being worked on (one statement for all of them); returns those still held. */
export async function extendLeases(pool: pg.Pool, runs: { id: string; token: string }[], leaseMs: number): Promise<Set<string>> {
  if (!runs.length) return new Set();
  const { rows } = await pool.query({
    name: 'flowgate-v2-heartbeat',
    text: `update runs r set wake_at = now() + make_interval(secs => $2::float8 / 1000)
      from jsonb_to_recordset($1::jsonb) as t(id uuid, token uuid)
      where r.id = t.id and r.lease_token = t.token and r.status not in (${TERMINAL_SQL}) returning r.id`,
    values: [JSON.stringify(runs), leaseMs],
  });
  return new Set(rows.map((r) => r.id as string));
}
