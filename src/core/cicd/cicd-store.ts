import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { capOutput } from '../runs/run-store.js';
import { isTerminalRun, PARENT_ENDED, type RunStatus } from '../status.js';
import { deepMerge } from '../runs/deep-merge.js';
import { TERMINAL_SQL } from '../runs/run-sql.js';


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
  /** The run already ended with another status (or, for a caller whose authority ended with the run, any status). */
  | { kind: 'conflict'; status: RunStatus };

/** A terminal report waiting until the provider's API shows how its pipeline run ended. */
export interface HeldReport {
  status: StatusReport['status'];
  result: Record<string, unknown> | null;
  cicdRunId: string;
  cicdRunUrl: string | null;
  actor: { name: string; door: string };
  heldAt: Date;
}

interface HeldRow { status: StatusReport['status']; result: Record<string, unknown> | null; cicd_run_id: string; cicd_run_url: string | null; actor: string; door: string; held_at: string | Date }
const heldOf = (r: HeldRow): HeldReport => ({
  status: r.status, result: r.result, cicdRunId: r.cicd_run_id, cicdRunUrl: r.cicd_run_url, actor: { name: r.actor, door: r.door }, heldAt: new Date(r.held_at),
});

/** The conditional writes of cicd runs. Like RunStore, they never move a terminal run. */
export class CicdStore {
  constructor(private readonly orm: MikroORM) {}

  /**
   * Applies a pipeline's report under the run's row lock, so concurrent reports are serialised:
   * `result` is deep-merged into the stored result; a terminal status sets finishedAt.
   */
  async report(runId: string, report: StatusReport, error: string | null, options: { refuseEnded?: boolean } = {}): Promise<ReportOutcome> {
    return this.orm.em.fork().transactional(async (tx) => {
      const conn = tx.getConnection();
      const ctx = tx.getTransactionContext();
      const rows = await conn.execute<{ status: RunStatus; result: Record<string, unknown> | null }[]>(
        'select status, result from runs where id = ? for update', [runId], 'all', ctx);
      if (!rows.length) return { kind: 'missing' } as const;
      const { status: current, result } = rows[0];
      if (isTerminalRun(current)) return current === report.status && !options.refuseEnded ? { kind: 'repeated', status: current } as const : { kind: 'conflict', status: current } as const;
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

  /**
   * Holds a terminal report until its pipeline run concludes; the run takes the pipeline run's ids
   * (and becomes running) at once. A run that ended meanwhile holds nothing (its status returned).
   */
  async hold(runId: string, report: StatusReport & { cicdRunId: string }, actor: { name: string; door: string }): Promise<{ held: true; status: RunStatus } | { held: false; status: RunStatus | null }> {
    return this.orm.em.fork().transactional(async (tx) => {
      const conn = tx.getConnection();
      const ctx = tx.getTransactionContext();
      const rows = await conn.execute<{ status: RunStatus }[]>(
        `update runs set status = case when status = 'queued' then 'running' else status end, started_at = coalesce(started_at, now()),
           cicd_run_id = coalesce(cicd_run_id, ?), cicd_run_url = coalesce(?, cicd_run_url), updated_at = now()
         where id = ? and status not in (${TERMINAL_SQL}) returning status`, [report.cicdRunId, report.cicdRunUrl ?? null, runId], 'all', ctx);
      if (!rows.length) {
        const [run] = await conn.execute<{ status: RunStatus }[]>('select status from runs where id = ?', [runId], 'all', ctx);
        return { held: false, status: run?.status ?? null } as const;
      }
      // One held report per status: a later one with the same status replaces it.
      await conn.execute(
        `insert into cicd_held_reports (run_id, status, result, cicd_run_id, cicd_run_url, actor, door) values (?, ?, ?::jsonb, ?, ?, ?, ?)
         on conflict (run_id, status) do update set result = excluded.result, cicd_run_id = excluded.cicd_run_id, cicd_run_url = excluded.cicd_run_url,
           actor = excluded.actor, door = excluded.door, held_at = now()`,
        [runId, report.status, report.result ? JSON.stringify(report.result) : null, report.cicdRunId, report.cicdRunUrl ?? null, actor.name, actor.door], 'run', ctx);
      return { held: true, status: rows[0].status } as const;
    });
  }

  async heldReports(runId: string): Promise<HeldReport[]> {
    const rows = await this.orm.em.fork().getConnection().execute<HeldRow[]>('select * from cicd_held_reports where run_id = ? order by held_at', [runId]);
    return rows.map(heldOf);
  }

  /** Takes a run's held reports for settling: whoever deletes them settles them (replicas sweep at once). */
  async takeHeld(runId: string): Promise<HeldReport[]> {
    const rows = await this.orm.em.fork().getConnection().execute<HeldRow[]>('delete from cicd_held_reports where run_id = ? returning *', [runId]);
    return rows.map(heldOf).sort((a, b) => a.heldAt.getTime() - b.heldAt.getTime());
  }

  /** Runs with held reports, longest waiting first. */
  async runsWithHeldReports(limit: number): Promise<string[]> {
    const rows = await this.orm.em.fork().getConnection().execute<{ run_id: string }[]>(
      'select run_id from cicd_held_reports group by run_id order by min(held_at) limit ?', [limit]);
    return rows.map((r) => r.run_id);
  }

  /** Another execution of the repository that already named this pipeline run as its own. */
  async pipelineRunOwner(repositoryIdentifier: string, cicdRunId: string, exceptRunId: string): Promise<string | null> {
    const rows = await this.orm.em.fork().getConnection().execute<{ id: string }[]>(
      `select id from runs where repository_identifier = ? and cicd_run_id = ? and id <> ? limit 1`, [repositoryIdentifier, cicdRunId, exceptRunId]);
    return rows[0]?.id ?? null;
  }

  /** The unfinished cicd runs among `runIds`. */
  async openAmong(runIds: string[]): Promise<string[]> {
    if (!runIds.length) return [];
    const rows = await sql<{ id: string }>(this.orm,
      `select id from runs where id = any(?::uuid[]) and execution_mode = 'cicd' and status not in (${TERMINAL_SQL})`, [runIds]);
    return rows.map((r) => r.id);
  }

  /** The cicd runs under a run (at any depth) that its end cancelled after they were dispatched (`started_at` is set by the dispatch). */
  async abandonedUnder(runId: string): Promise<string[]> {
    const rows = await sql<{ id: string }>(this.orm,
      `with recursive tree(id) as (select id from runs where parent_run_id = ? union all select r.id from runs r join tree t on r.parent_run_id = t.id)
       select r.id from runs r join tree t on t.id = r.id
       where r.execution_mode = 'cicd' and r.status = 'cancelled' and r.error = ? and r.started_at is not null`, [runId, PARENT_ENDED]);
    return rows.map((r) => r.id);
  }

  /** Cancels a run that was not handed to its pipeline yet (still queued). */
  async cancelIfQueued(runId: string, reason: string): Promise<boolean> {
    const rows = await this.orm.em.fork().getConnection().execute<{ id: string }[]>(
      `update runs set status = 'cancelled', finished_at = now(), error = ?, updated_at = now()
       where id = ? and status = 'queued' returning id`, [reason, runId]);
    return rows.length > 0;
  }
}
