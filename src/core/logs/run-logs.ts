import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { LogLine, type LogLevel } from '../../db/entities/log-line.js';

export interface NewLogLine {
  level: LogLevel;
  source: string;
  group: string;
  message: string;
}

const MAX_MESSAGE = 16_000;

/**
 * Appends lines inside the caller's transaction. The counter row is locked until commit, so
 * lines commit in sequence order and a reader that has seen seq N never later finds a line
 * below N appear. Writing a run's last line in the transaction that ends the run means a
 * reader that sees the run ended has every line it will have.
 */
export async function appendLines(tx: EntityManager, runId: string, lines: NewLogLine[]): Promise<void> {
  if (!lines.length) return;
  const rows = await tx.getConnection().execute<{ log_seq: number }[]>(
    'update runs set log_seq = log_seq + ? where id = ? returning log_seq', [lines.length, runId], 'all', tx.getTransactionContext(),
  );
  if (!rows.length) return;
  const first = rows[0].log_seq - lines.length + 1;
  const now = new Date();
  await tx.insertMany(LogLine, lines.map((l, i) => Object.assign(new LogLine(), {
    runId, seq: first + i, at: now, level: l.level, source: l.source, group: l.group, message: l.message.slice(0, MAX_MESSAGE),
  })));
}

/** A run's ordered log. Sequence numbers are dense per run so readers can follow by offset. */
export class RunLogs {
  constructor(private readonly orm: MikroORM) {}

  async append(runId: string, lines: NewLogLine[]): Promise<void> {
    if (!lines.length) return;
    await this.orm.em.fork().transactional((tx) => appendLines(tx, runId, lines));
  }

  /** Lines after `afterSeq` (0 = from the start), oldest first. */
  list(runId: string, afterSeq = 0, limit = 10_000): Promise<LogLine[]> {
    return this.orm.em.fork().find(LogLine, { runId, seq: { $gt: afterSeq } }, { orderBy: { seq: 'asc' }, limit });
  }

  listForRuns(runIds: string[]): Promise<LogLine[]> {
    if (!runIds.length) return Promise.resolve([]);
    return this.orm.em.fork().find(LogLine, { runId: { $in: runIds } }, { orderBy: { runId: 'asc', seq: 'asc' } });
  }
}

export const presentLogLine = (l: LogLine) => ({
  seq: l.seq, timestamp: l.at.toISOString(), level: l.level, source: l.source, group: l.group, message: l.message,
});
