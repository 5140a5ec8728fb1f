import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { LogLine, LogLineSchema, type LogLevel } from '../../db/entities/log-line.js';
import { rowTo, sql } from '../../db/sql.js';

export interface NewLogLine {
  level: LogLevel;
  source: string;
  group: string;
  message: string;
}

const MAX_MESSAGE = 16_000;

/**
 * Appends lines (inside the caller's transaction, if it has one). The counter row is locked until commit, so
 * lines commit in sequence order and a reader that has seen seq N never later finds a line
 * below N appear. Writing a run's last line in the transaction that ends the run means a
 * reader that sees the run ended has every line it will have.
 */
export async function appendLines(em: EntityManager, runId: string, lines: NewLogLine[]): Promise<void> {
  if (!lines.length) return;
  // One statement: the counter bump and the inserts commit together even outside a transaction,
  // and a hot path (every step start and end) pays one round trip instead of four.
  await em.getConnection().execute(APPEND_LINES, [lines.length, runId, ...countedLinesParams(lines)], 'run', em.getTransactionContext());
}

/**
 * The channel told that a run's log grew (payload: the run id; empty: any run may have). Log
 * streams on every replica read again when told. PostgreSQL delivers a notification at commit and
 * folds identical ones of a transaction into one, so a batch of lines costs one.
 */
export const LOG_CHANNEL = 'flowgate_log';

/** SQL: a notification on LOG_CHANNEL naming the run whose id is the expression `runId`. */
export const notifyLogSql = (runId: string) => `pg_notify('${LOG_CHANNEL}', ${runId}::text)`;

/**
 * Inserts lines after a `counter` CTE (columns `id`, `log_seq`) that has bumped a run's
 * `log_seq` by their number; its parameters are `countedLinesParams(lines)`.
 */
export const INSERT_COUNTED_LINES = `insert into log_lines (run_id, seq, at, level, source, log_group, message)
  select counter.id, counter.log_seq - ? + l.i, now(), l.level, l.source, l."group", l.message
  from counter, jsonb_to_recordset(?::jsonb) as l(i int, level text, source text, "group" text, message text)`;

/** Appends counted lines to one run and tells log streams, in one statement (parameters: count, run id, `countedLinesParams`). */
export const APPEND_LINES = `with counter as (update runs set log_seq = log_seq + ? where id = ? returning id, log_seq), logged as (${INSERT_COUNTED_LINES})
  select ${notifyLogSql('counter.id')} from counter`;

export function countedLinesParams(lines: NewLogLine[]): [number, string] {
  return [lines.length, JSON.stringify(lines.map((l, i) => ({ i: i + 1, level: l.level, source: l.source, group: l.group, message: l.message.slice(0, MAX_MESSAGE) })))];
}

/** A run's ordered log. Sequence numbers are dense per run so readers can follow by offset. */
export class RunLogs {
  constructor(private readonly orm: MikroORM) {}

  async append(runId: string, lines: NewLogLine[]): Promise<void> {
    if (!lines.length) return;
    // Outside any transaction: plain SQL (every step start and end comes here).
    await sql(this.orm, APPEND_LINES, [lines.length, runId, ...countedLinesParams(lines)], 'flowgate-log-append');
  }

  /** Lines after `afterSeq` (0 = from the start), oldest first. */
  list(runId: string, afterSeq = 0, limit = 10_000): Promise<LogLine[]> {
    return this.orm.em.fork().find(LogLine, { runId, seq: { $gt: afterSeq } }, { orderBy: { seq: 'asc' }, limit });
  }

  listForRuns(runIds: string[]): Promise<LogLine[]> {
    if (!runIds.length) return Promise.resolve([]);
    return this.orm.em.fork().find(LogLine, { runId: { $in: runIds } }, { orderBy: { runId: 'asc', seq: 'asc' } });
  }

  /** The last `perRun` lines of each run, oldest first (a list of runs shows their tails, not whole logs). */
  async tailsOfRuns(runIds: string[], perRun: number): Promise<LogLine[]> {
    if (!runIds.length) return [];
    // Each run's tail is a backward range scan of the (run_id, seq) key.
    const rows = await sql<Record<string, unknown>>(this.orm,
      `select t.* from unnest(?::uuid[]) as r(id),
         lateral (select run_id, seq, at, level, source, log_group as "group", message from log_lines where run_id = r.id order by seq desc limit ?) t
       order by t.run_id, t.seq`, [runIds, perRun]);
    return rows.map((r) => rowTo<LogLine>(LogLineSchema, r));
  }
}

export const presentLogLine = (l: LogLine) => ({
  seq: l.seq, timestamp: l.at.toISOString(), level: l.level, source: l.source, group: l.group, message: l.message,
});
