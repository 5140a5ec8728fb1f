import type { MikroORM } from '@mikro-orm/postgresql';
import { capOutput } from '../runs/run-store.js';
import { isTerminalRun, TERMINAL_RUN_STATUSES, type RunStatus } from '../status.js';
import { deepMerge } from '../runs/deep-merge.js';

const TERMINAL_SQL = TERMINAL_RUN_STATUSES.map((s) => `'${s}'`).join(',');

/** A status report from a pipeline, as the core sees it. */
export interface StatusReport {
  status: Extract<RunStatus, 'running' | 'completed' | 'partial' | 'failed' | 'cancelled'>;
  result?: Record<string, unknown>;
  cicdRunId?: string;
  cicdRunUrl?: string;
}

export type ReportOutcome =
  | { kind: 'missing' }
  /** The report was applied; `from` is the status before it. */
  | { kind: 'applied'; from: RunStatus; status: RunStatus }
  /** The run already ended with exactly this status: acknowledged, nothing changed. */
  | { kind: 'repeated'; status: RunStatus }
  /** The run already ended with another status. */
  | { kind: 'conflict'; status: RunStatus };

/** The conditional writes of cicd runs. Like RunStore, they never move a terminal run. */
export class CicdStore {
  constructor(private readonly orm: MikroORM) {}

  /**
   * Applies a pipeline's report under the run's row lock, so concurrent reports are serialised:
   * `result` is deep-merged into the stored result; a terminal status sets finishedAt.
   */
  async report(runId: string, report: StatusReport, error: string | null): Promise<ReportOutcome> {
    return this.orm.em.fork().transactional(async (tx) => {
      const conn = tx.getConnection();
      const ctx = tx.getTransactionContext();
      const rows = await conn.execute<{ status: RunStatus; result: Record<string, unknown> | null }[]>(
        'select status, result from runs where id = ? for update', [runId], 'all', ctx);
      if (!rows.length) return { kind: 'missing' } as const;
      const { status: current, result } = rows[0];
      if (isTerminalRun(current)) return current === report.status ? { kind: 'repeated', status: current } as const : { kind: 'conflict', status: current } as const;
      const terminal = isTerminalRun(report.status);
      const merged = report.result ? capOutput(deepMerge(result ?? {}, report.result)) : result ?? {};
      await conn.execute(
        `update runs set status = ?, result = ?::jsonb, cicd_run_id = coalesce(?, cicd_run_id), cicd_run_url = coalesce(?, cicd_run_url),
           started_at = coalesce(started_at, now()), finished_at = ${terminal ? 'now()' : 'finished_at'},
           error = ${terminal ? '?' : 'error'}, updated_at = now()
         where id = ? and status not in (${TERMINAL_SQL})`,
        [report.status, JSON.stringify(merged), report.cicdRunId ?? null, report.cicdRunUrl ?? null, ...(terminal ? [error] : []), runId], 'run', ctx);
      return { kind: 'applied', from: current, status: report.status } as const;
    });
  }

  /**
   * Records a successful dispatch: a queued run becomes running; ids the pipeline already reported
   * are kept. A run that ended meanwhile keeps its status (`updated` false, with that status).
   */
  async markDispatched(runId: string, ids: { cicdRunId?: string; cicdRunUrl?: string }): Promise<{ updated: boolean; status: RunStatus | null }> {
    const rows = await this.orm.em.fork().getConnection().execute<{ status: RunStatus }[]>(
      `update runs set status = case when status = 'queued' then 'running' else status end,
         started_at = case when status in (${TERMINAL_SQL}) then started_at else coalesce(started_at, now()) end,
         cicd_run_id = coalesce(cicd_run_id, ?), cicd_run_url = coalesce(cicd_run_url, ?), updated_at = now()
       where id = ? returning status`, [ids.cicdRunId ?? null, ids.cicdRunUrl ?? null, runId]);
    const status = rows[0]?.status ?? null;
    return { updated: status !== null && !isTerminalRun(status), status };
  }

  /** Cancels a run that was not handed to its pipeline yet (still queued). */
  async cancelIfQueued(runId: string, reason: string): Promise<boolean> {
    const rows = await this.orm.em.fork().getConnection().execute<{ id: string }[]>(
      `update runs set status = 'cancelled', finished_at = now(), error = ?, updated_at = now()
       where id = ? and status = 'queued' returning id`, [reason, runId]);
    return rows.length > 0;
  }
}
