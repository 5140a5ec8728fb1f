import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { TERMINAL_SQL } from '../runs/run-sql.js';

const DAY_MS = 86_400_000;
/** Only one replica prunes at a time (two deleting the same rows would only contend). */
const PRUNE_LOCK = 7431002;

export interface RetentionOptions {
  /** Finished runs, door deliveries, decided external approvals and expired tokens older than this go. */
  retentionDays: number;
  auditRetentionDays: number;
  /** Rows per statement (root runs per statement for runs: their steps, logs and children go with them). */
  batch?: number;
  /** How long one sweep may prune before leaving the rest to the next. */
  budgetMs?: number;
  /** Forgets the engine's workflows of pruned runs (their engine run ids). */
  forgetWorkflows?(engineRunIds: string[]): Promise<void>;
}

export interface PruneCounts {
  runs: number;
  auditEvents: number;
  deliveries: number;
  approvals: number;
  tokens: number;
}

/**
 * Deletes what is older than the retention, in batches, oldest first. A run goes only with its
 * whole tree (children go with their root), and only when every run of the tree has ended and
 * none has a pending approval; its steps, log lines, approvals, locks and execution tokens go
 * with it (foreign keys cascade).
 */
export class Retention {
  private readonly batch: number;
  private readonly budgetMs: number;

  constructor(private readonly orm: MikroORM, private readonly options: RetentionOptions) {
    this.batch = options.batch ?? 500;
    this.budgetMs = options.budgetMs ?? 5_000;
  }

  async prune(now = new Date()): Promise<PruneCounts> {
    const counts: PruneCounts = { runs: 0, auditEvents: 0, deliveries: 0, approvals: 0, tokens: 0 };
    const until = Date.now() + this.budgetMs;
    const cutoff = new Date(now.getTime() - this.options.retentionDays * DAY_MS);
    const auditCutoff = new Date(now.getTime() - this.options.auditRetentionDays * DAY_MS);
    const more = () => Date.now() < until;

    // Runs: roots are walked oldest first with a cursor, so roots that must stay never block the rest.
    // The cursor keeps the database's own text of the time: a JS Date would drop its microseconds.
    let cursor: { finishedAt: string; id: string } | null = null;
    while (more()) {
      const roots: { id: string; finished_at: string }[] = await sql(this.orm,
        `select id, finished_at::text as finished_at from runs where parent_run_id is null and finished_at is not null and finished_at < ?
           and status in (${TERMINAL_SQL}) ${cursor ? 'and (finished_at, id) > (?::timestamptz, ?::uuid)' : ''}
         order by finished_at, id limit ?`,
        [cutoff, ...(cursor ? [cursor.finishedAt, cursor.id] : []), this.batch]);
      if (!roots.length) break;
      const last = roots[roots.length - 1];
      cursor = { finishedAt: last.finished_at, id: last.id };
      const gone = await this.locked((exec) => this.pruneTrees(exec, roots.map((r) => r.id)));
      if (gone === null) return counts;
      counts.runs += gone.length;
      if (gone.length && this.options.forgetWorkflows) await this.options.forgetWorkflows(gone);
      if (roots.length < this.batch) break;
    }

    counts.auditEvents = await this.drain(
      `delete from audit_events where id in (select id from audit_events where at < ? order by at limit ?)`, [auditCutoff], more);
    counts.deliveries = await this.drain(
      `delete from inbound_deliveries where (door, delivery_id) in (
         select door, delivery_id from inbound_deliveries where status in ('done','failed') and updated_at < ? order by updated_at limit ?)`, [cutoff], more);
    counts.approvals = await this.drain(
      `delete from approvals where id in (
         select id from approvals where run_id is null and status <> 'pending' and requested_at < ? order by requested_at limit ?)`, [cutoff], more);
    counts.tokens = await this.drain(
      `delete from api_tokens where id in (select id from api_tokens where expires_at < ? order by expires_at limit ?)`, [cutoff], more);
    return counts;
  }

  /**
   * Deletes the trees of these roots that may go, in one statement; returns the engine run ids of
   * every run deleted. A tree stays whole when any of its runs has not ended or waits for an approval.
   */
  private pruneTrees(exec: Exec, rootIds: string[]): Promise<string[]> {
    return exec<{ engine_run_id: string }>(
      `with recursive tree as (
         select id as root, id from runs where id in (${rootIds.map(() => '?').join(',')})
         union all
         select t.root, c.id from runs c join tree t on c.parent_run_id = t.id),
       kept as (
         select t.root from tree t join runs r on r.id = t.id where r.status not in (${TERMINAL_SQL})
         union
         select t.root from tree t join approvals a on a.run_id = t.id where a.status = 'pending')
       delete from runs where id in (select id from tree where root not in (select root from kept))
       returning engine_run_id`, rootIds).then((rows) => rows.map((r) => r.engine_run_id));
  }

  /** Repeats a batched delete (`limit ?` last) until fewer than a batch go or the budget is spent. */
  private async drain(statement: string, params: unknown[], more: () => boolean): Promise<number> {
    let total = 0;
    while (more()) {
      const n = await this.locked(async (exec) => (await exec<{ n: number }>(`with gone as (${statement} returning 1) select count(*)::int as n from gone`, [...params, this.batch]))[0].n);
      if (n === null) break;
      total += n;
      if (n < this.batch) break;
    }
    return total;
  }

  /** Runs one batch in a transaction holding the prune lock; null when another replica holds it. */
  private locked<T>(work: (exec: Exec) => Promise<T>): Promise<T | null> {
    return this.orm.em.fork().transactional(async (tx) => {
      const exec: Exec = (text, params) => tx.getConnection().execute(text, params, 'all', tx.getTransactionContext());
      const [{ ok }] = await exec<{ ok: boolean }>('select pg_try_advisory_xact_lock(?) as ok', [PRUNE_LOCK]);
      return ok ? work(exec) : null;
    });
  }
}

type Exec = <R>(text: string, params: unknown[]) => Promise<R[]>;
