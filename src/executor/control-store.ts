import type { MikroORM } from '@mikro-orm/postgresql';
import { AUDIT_INSERT_SELECT, auditParams, type AuditEntry } from '../core/audit/audit-log.js';
import { newId } from '../core/ids.js';
import { notifyLogSql, type NewLogLine } from '../core/logs/run-logs.js';
import type { FlowDefinition } from '../core/registry/manifest-schema.js';
import type { ControlStepRow, ControlStorePort, ControlTxPort } from '../core/runs/run-control.js';
import { capOutput } from '../core/runs/run-store.js';
import type { RunStatus, StepStatus } from '../core/status.js';
import { conflict } from '../errors.js';
import { columnsOf, rowTo, sql, transaction, type Query } from '../db/sql.js';
import { StepRunSchema, type StepRun } from '../db/entities/step-run.js';
import { HOLD_CHANNEL, WAKE_CHANNEL } from './executor.js';
import { TERMINAL_SQL } from '../core/runs/run-sql.js';

const STEP_COLUMNS = columnsOf(StepRunSchema);

/** A v2 run locked for a control action, with its step rows; writes go through it and commit together. */
export class ControlTx implements ControlTxPort {
  constructor(
    private readonly q: Query,
    readonly run: { id: string; status: RunStatus; definition: FlowDefinition },
    readonly steps: ControlStepRow[],
  ) {}

  /** Writes a step's outcome decided by a person (skip, force-complete). */
  async overrideStep(ref: string, kind: string, status: StepStatus, output: unknown, error: string | null, by: string): Promise<void> {
    const deps = this.run.definition.steps.find((s) => s.ref === ref)?.dependsOn.length ?? 0;
    await this.q(
      `insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, error, finished_at, overridden_by, attempts)
       values (?, ?, ?, ?, ?, 0, ?, ?, ?::jsonb, ?, now(), ?, '[]'::jsonb)
       on conflict (run_id, step_ref) do update set status = excluded.status, output = excluded.output, error = excluded.error,
         finished_at = now(), waiting_for = null, overridden_by = excluded.overridden_by`,
      [newId(), this.run.id, ref, kind, status, deps, deps, JSON.stringify(capOutput(output) ?? null), error, by]);
  }

  /**
   * Sets steps back to pending, to run again; their attempt number and attempt history stay, so
   * the next attempt continues the count.
   */
  async resetSteps(refs: string[]): Promise<void> {
    if (!refs.length) return;
    await this.q(
      `update step_runs set status = 'pending', output = null, error = null, started_at = null, finished_at = null, waiting_for = null, overridden_by = null
       where run_id = ? and step_ref = any(?::text[])`, [this.run.id, refs]);
  }

  /** An ended run runs again (a step retry or a subtree replay): it is running, its end undone. */
  async reopen(): Promise<void> {
    await this.q(`update runs set status = 'running', finished_at = null, error = null, result = '{}'::jsonb, cancel_requested = null where id = ?`, [this.run.id]);
    this.run.status = 'running';
  }

  async setStatus(status: 'running' | 'paused'): Promise<void> {
    await this.q(`update runs set status = ? where id = ?`, [status, this.run.id]);
    this.run.status = status;
  }

  /** The step's row as this action leaves it (the answer: the executor may move it right after the commit). */
  async stepRow(ref: string): Promise<StepRun> {
    const [row] = await this.q(`select ${STEP_COLUMNS} from step_runs where run_id = ? and step_ref = ?`, [this.run.id, ref]);
    return rowTo<StepRun>(StepRunSchema, row);
  }

  /** Log lines and an audit record of the action, committed with it. */
  async record(lines: NewLogLine[], audit: AuditEntry): Promise<void> {
    await writeRecord(this.q, this.run.id, lines, audit);
  }
}

async function writeRecord(q: Query, runId: string, lines: NewLogLine[], audit: AuditEntry): Promise<void> {
  await q(
    `with seq as (update runs set log_seq = log_seq + ?, updated_at = now() where id = ? returning log_seq),
       logged as (insert into log_lines (run_id, seq, at, level, source, log_group, message)
         select ?::uuid, seq.log_seq - ? + l.i, now(), l.level, l.source, l."group", l.message
         from seq, jsonb_to_recordset(?::jsonb) as l(i int, level text, source text, "group" text, message text)),
       -- Log streams read again (a plain CTE runs only when referenced: the audit row's select joins it).
       told as (select ${notifyLogSql('?::uuid')} as n)
     ${AUDIT_INSERT_SELECT} from (select ?::text as id) x, told`,
    [lines.length, runId, runId, lines.length, JSON.stringify(lines.map((l, i) => ({ ...l, i: i + 1 }))), runId, ...auditParams(audit, 'run'), runId]);
}

export interface ControlStoreOptions {
  /** How long a control action may keep executors off the run (a crashed caller's hold lapses). */
  holdMs: number;
  /** How long to wait for the executor working on the run to release it. */
  waitMs: number;
}

/**
 * Run control on the v2 executor's tables. Changing step rows while an executor works on the
 * run would race its flush, so an action first holds the run (claims leave it alone), asks the
 * executor holding it to stop starting steps and release it (NOTIFY), waits for that, then
 * locks the row, checks and writes in one transaction, and makes the run claimable again.
 */
export class ControlStore implements ControlStorePort {
  constructor(private readonly orm: MikroORM, private readonly options: ControlStoreOptions = { holdMs: 15_000, waitMs: 10_000 }) {}

  async withRun<T>(runId: string, act: (tx: ControlTx) => Promise<T>): Promise<T> {
    const [taken] = await sql<{ leased: boolean }>(this.orm,
      `update runs set control_hold_until = now() + make_interval(secs => ?::float8 / 1000)
       where id = ? and engine_version = 'v2' and (control_hold_until is null or control_hold_until < now())
       returning lease_token is not null and wake_at > now() as leased`, [this.options.holdMs, runId]);
    if (!taken) throw conflict(`Another control action on run ${runId} is in progress; try again`);
    try {
      if (taken.leased) await this.awaitRelease(runId);
      return await transaction(this.orm, async (q) => {
        const [run] = await q<{ id: string; status: RunStatus; definition: FlowDefinition; leased: boolean }>(
          `select id, status, definition, lease_token is not null and wake_at > now() as leased from runs where id = ? for update`, [runId]);
        if (run.leased) throw conflict(`Run ${runId} is still executing a step; try again when it finishes`);
        const steps = await q<ControlStepRow>(
          `select step_ref as ref, kind, status, error, overridden_by as "overriddenBy", waiting_for as "waitingFor", attempt, output
           from step_runs where run_id = ? order by step_ref`, [runId]);
        const out = await act(new ControlTx(q, { id: run.id, status: run.status, definition: run.definition }, steps));
        // Claimable again at once (a dead executor's lease is fenced out by the new claim's token).
        await q(`with w as (update runs set control_hold_until = null, lease_token = null, lease_owner = null, signal_seq = signal_seq + 1, updated_at = now(),
            wake_at = case when status in (${TERMINAL_SQL}) then null when status = 'paused' then expires_at else now() end
          where id = ? returning id) select pg_notify('${WAKE_CHANNEL}', '') from w`, [runId]);
        return out;
      });
    } catch (err) {
      // A refused or failed action changed nothing: let executors have the run again.
      await sql(this.orm, `update runs set control_hold_until = null where id = ?`, [runId]);
      throw err;
    }
  }

  /** Tells whichever executor works on the run to stop starting steps, and waits until it has let go. */
  private async awaitRelease(runId: string): Promise<void> {
    await sql(this.orm, `select pg_notify('${HOLD_CHANNEL}', ?)`, [runId]);
    const until = Date.now() + this.options.waitMs;
    for (let wait = 10; Date.now() < until; wait = Math.min(wait * 2, 200)) {
      const [r] = await sql<{ leased: boolean }>(this.orm, `select lease_token is not null and wake_at > now() as leased from runs where id = ?`, [runId]);
      if (!r?.leased) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    throw conflict(`Run ${runId} is still executing a step; try again when it finishes`);
  }

  /** Pauses a running v2 run: nothing new starts (an executor working on it is told at once). Null when it was not running. */
  async pause(runId: string, lines: NewLogLine[], audit: AuditEntry): Promise<boolean> {
    return transaction(this.orm, async (q) => {
      const rows = await q(`update runs set status = 'paused', signal_seq = signal_seq + 1, updated_at = now(),
          wake_at = case when lease_token is null then expires_at else wake_at end
        where id = ? and engine_version = 'v2' and status in ('running', 'waiting', 'suspended') returning id`, [runId]);
      if (!rows.length) return false;
      await writeRecord(q, runId, lines, audit);
      await q(`select pg_notify('${HOLD_CHANNEL}', ?)`, [runId]);
      return true;
    });
  }

  /** Resumes a paused v2 run: claimable at once (or when the executor still finishing its steps lets go). */
  async resume(runId: string, lines: NewLogLine[], audit: AuditEntry): Promise<boolean> {
    return transaction(this.orm, async (q) => {
      const rows = await q(`update runs set status = 'running', signal_seq = signal_seq + 1, updated_at = now(),
          wake_at = case when lease_token is null or wake_at <= now() then now() else wake_at end
        where id = ? and engine_version = 'v2' and status = 'paused' returning id`, [runId]);
      if (!rows.length) return false;
      await writeRecord(q, runId, lines, audit);
      await q(`select pg_notify('${WAKE_CHANNEL}', '')`);
      return true;
    });
  }
}
