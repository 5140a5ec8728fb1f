import type { MikroORM } from '@mikro-orm/postgresql';
import type { LogLevel } from '../../db/entities/log-line.js';
import { sql, transaction, type Query } from '../../db/sql.js';
import { conflict } from '../../errors.js';
import { AUDIT_INSERT_SELECT, auditParams, type AuditEntry } from '../audit/audit-log.js';
import { idFrom, isUuid } from '../ids.js';
import { isTerminalRun, type RunStatus, type StepStatus } from '../status.js';
import { TERMINAL_SQL } from './run-sql.js';

export const FLOW_TYPES = ['automation', 'selfServiceAction', 'scorecard', 'reference'] as const;
export type FlowType = (typeof FLOW_TYPES)[number];

/** What the flow-runs API keeps of a run beyond the run itself (a run without one has the defaults). */
export interface FlowRunRecord {
  runId: string;
  /** The id the run was given there when that is not a UUID. */
  name: string | null;
  flowType: FlowType;
  /** The person number of who last wrote the run there. */
  updatedBy: number | null;
}

/** The labels written with a record. */
export interface FlowRunLabel {
  name?: string | null;
  flowType: FlowType;
  updatedBy: number | null;
}

/**
 * The run a flow-run id names: a UUID is a run's own id; any other name gives an id derived from
 * it, so a name is unique without a lookup table and concurrent creations of one name meet on
 * the run's primary key.
 */
export const runIdOfName = (name: string): string => (isUuid(name) ? name.toLowerCase() : idFrom(`flow-run:${name}`));

/** An external run's execution as its recorder reports it (a PUT replaces it whole, except the log). */
export interface ExternalExecution {
  status: RunStatus;
  error: string | null;
  payload: Record<string, unknown>;
  result: Record<string, unknown>;
  tags: Record<string, string>;
  /** Null: kept as recorded, or now when the run leaves `queued` (started) or ends (finished). */
  startedAt: Date | null;
  finishedAt: Date | null;
  steps: { ref: string; status: StepStatus; waitingFor: string | null; error: string | null; startedAt: Date | null; finishedAt: Date | null }[];
  /** The whole log as the recorder knows it: a log is append-only, so only lines past those recorded are added. */
  lines: { at: Date | null; level: LogLevel; step: string | null; message: string }[];
}

const MAX_MESSAGE = 16_000;

const upsertRecord = (q: Query, runId: string, label: FlowRunLabel) => q(
  `insert into flow_run_records (run_id, name, flow_type, updated_by, updated_at) values (?, ?, ?, ?, now())
   on conflict (run_id) do update set flow_type = excluded.flow_type, updated_by = excluded.updated_by, updated_at = now(),
     name = coalesce(flow_run_records.name, excluded.name)`,
  [runId, label.name ?? null, label.flowType, label.updatedBy]);

const audit = (q: Query, runId: string, entry: AuditEntry) =>
  q(`${AUDIT_INSERT_SELECT} from (select ?::text as id) target`, [...auditParams(entry, 'run'), runId]);

/**
 * The records of the flow-runs API and its writes to runs: labels, executions recorded by external
 * systems, and deleting ended runs. Each write to a run is one transaction holding the run's row
 * (an external record is checked against the run's end under it, a deletion against any restart).
 */
export class FlowRunRecords {
  constructor(private readonly orm: MikroORM) {}

  async of(runIds: string[]): Promise<Map<string, FlowRunRecord>> {
    if (!runIds.length) return new Map();
    const rows = await sql<{ run_id: string; name: string | null; flow_type: FlowType; updated_by: number | null }>(this.orm,
      'select run_id, name, flow_type, updated_by from flow_run_records where run_id = any(?::uuid[])', [runIds]);
    return new Map(rows.map((r) => [r.run_id, { runId: r.run_id, name: r.name, flowType: r.flow_type, updatedBy: r.updated_by }]));
  }

  /** Labels a run just started or registered (its start is audited with it). */
  async label(runId: string, label: FlowRunLabel): Promise<void> {
    await upsertRecord((text, params) => sql(this.orm, text, params), runId, label);
  }

  /** A run's tags and labels, the part of a record its writer owns whoever executes the run; false when the run is gone. */
  async relabel(runId: string, tags: Record<string, string>, label: FlowRunLabel, entry: AuditEntry): Promise<boolean> {
    return transaction(this.orm, async (q) => {
      const [row] = await q<{ id: string }>('update runs set tags = ?::jsonb, updated_at = now() where id = ? returning id', [JSON.stringify(tags), runId]);
      if (!row) return false;
      await upsertRecord(q, runId, label);
      await audit(q, runId, entry);
      return true;
    });
  }

  /**
   * Replaces an external run's execution with what its recorder reports. An ended run's record is
   * final, as every run's is: its status comes back instead (and nothing changes); null when it is gone.
   */
  async replaceExternal(runId: string, x: ExternalExecution, label: FlowRunLabel, entry: AuditEntry): Promise<{ ended: RunStatus } | 'replaced' | null> {
    return transaction(this.orm, async (q) => {
      const [run] = await q<{ status: RunStatus; log_seq: number }>('select status, log_seq from runs where id = ? for update', [runId]);
      if (!run) return null;
      if (isTerminalRun(run.status)) return { ended: run.status };
      const ends = isTerminalRun(x.status);
      await q(`update runs set status = ?, error = ?, payload = ?::jsonb, result = ?::jsonb, tags = ?::jsonb, updated_at = now(),
          started_at = case when ?::timestamptz is not null then ?::timestamptz when ? = 'queued' then null else coalesce(started_at, now()) end,
          finished_at = case when ? then coalesce(?::timestamptz, now()) end
        where id = ?`,
      [x.status, x.error, JSON.stringify(x.payload), JSON.stringify(x.result), JSON.stringify(x.tags), x.startedAt, x.startedAt, x.status,
        ends, x.finishedAt, runId]);
      await q('delete from step_runs where run_id = ?', [runId]);
      if (x.steps.length) {
        await q(`insert into step_runs (id, run_id, step_ref, kind, status, attempt, error, waiting_for, started_at, finished_at)
          select gen_random_uuid(), ?, s.ref, 'external', s.status, 1, s.error, s.waiting_for, s.started_at, s.finished_at
          from jsonb_to_recordset(?::jsonb) as s(ref text, status text, error text, waiting_for text, started_at timestamptz, finished_at timestamptz)`,
        [runId, JSON.stringify(x.steps.map((s) => ({ ref: s.ref, status: s.status, error: s.error, waiting_for: s.waitingFor, started_at: s.startedAt, finished_at: s.finishedAt })))]);
      }
      const added = x.lines.slice(run.log_seq);
      if (added.length) {
        // Dense sequence numbers after the recorded ones, under the row lock: readers follow a log by offset.
        await q('update runs set log_seq = log_seq + ? where id = ?', [added.length, runId]);
        await q(`insert into log_lines (run_id, seq, at, level, source, log_group, message)
          select ?, ? + l.i, coalesce(l.at, now()), l.level, l.source, 'external', l.message
          from jsonb_to_recordset(?::jsonb) as l(i int, at timestamptz, level text, source text, message text)`,
        [runId, run.log_seq, JSON.stringify(added.map((l, i) => ({
          i: i + 1, at: l.at, level: l.level, source: l.step ? `step:${l.step}` : 'external', message: l.message.slice(0, MAX_MESSAGE),
        })))]);
      }
      await upsertRecord(q, runId, label);
      await audit(q, runId, entry);
      return 'replaced';
    });
  }

  /**
   * Deletes an ended run with the runs it started (a child's record is part of its parent's, as
   * retention has it) and, through the foreign keys, their steps, logs, approvals, events, locks and
   * tokens. Refused (409) while any of them has not ended; null when the run is gone.
   */
  async removeEnded(runId: string, shownAs: string, entry: AuditEntry): Promise<string[] | null> {
    return transaction(this.orm, async (q) => {
      const tree = await q<{ id: string; status: RunStatus }>(
        `with recursive tree as (select id from runs where id = ? union all select r.id from runs r join tree t on r.parent_run_id = t.id)
         select r.id, r.status from runs r join tree t on t.id = r.id for update of r`, [runId]);
      const self = tree.find((r) => r.id === runId);
      if (!self) return null;
      if (!isTerminalRun(self.status)) throw conflict(`Flow run ${shownAs} has not ended: cancel it before deleting it`);
      const active = tree.filter((r) => !isTerminalRun(r.status));
      if (active.length) throw conflict(`Flow run ${shownAs} started runs that have not ended (${active.map((r) => r.id).join(', ')}): cancel them before deleting it`);
      const ids = tree.map((r) => r.id);
      await q(`delete from runs where id = any(?::uuid[]) and status in (${TERMINAL_SQL})`, [ids]);
      await audit(q, runId, { ...entry, details: { ...entry.details, deleted: ids } });
      return ids;
    });
  }
}
