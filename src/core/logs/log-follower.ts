import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { ListenConnection } from '../../db/listen-connection.js';
import { sql } from '../../db/sql.js';
import type { RunStatus } from '../status.js';
import { LOG_CHANNEL } from './run-logs.js';

/** Where a run's log and status stand: lines 1..logSeq are committed. */
export interface LogState {
  status: RunStatus;
  logSeq: number;
}

/** One follower of a run's log (a stream): told the run's state whenever it may have moved. */
export interface LogWatcher {
  readonly runId: string;
  /** The run's state as just read (`null`: the run is gone); it may not have moved. The watcher reads lines on its own time. */
  changed(state: LogState | null): void;
  /** The process is stopping: end the stream. */
  stopping(): Promise<void>;
}

export interface LogFollowerOptions {
  /** Read the runs' state at least this often: a safety net for a missed NOTIFY and for writers that send none. */
  pollMs?: number;
  /** First reconnect delay of the LISTEN connection; doubles up to 10 s. */
  backoffMs?: number;
}

export const LISTENER_APPLICATION_NAME = 'flowgate-log-listener';

/**
 * Follows the logs of runs for every stream of this process, from PostgreSQL (so through any
 * replica): one LISTEN connection on `flowgate_log` (opened with the first watcher) and one query
 * per wake-up for all watched runs, however many streams there are. Writers notify when they
 * commit lines; a poll every `pollMs` covers notifications missed while reconnecting and writers
 * that do not notify.
 */
export class LogFollower {
  private readonly watchers = new Set<LogWatcher>();
  private readonly connection?: ListenConnection;
  private started = false;
  private stopped = false;
  private poll?: NodeJS.Timeout;
  /** Runs named by notifications since the last check; `all` after an unnamed one, a poll or a reconnect. */
  private due: Set<string> | 'all' = new Set();
  private checking?: Promise<void>;

  constructor(
    private readonly orm: MikroORM,
    databaseUrl: string | undefined,
    private readonly log: Logger,
    private readonly options: LogFollowerOptions = {},
  ) {
    if (!databaseUrl) return;
    this.connection = new ListenConnection({
      databaseUrl, channels: [LOG_CHANNEL], applicationName: LISTENER_APPLICATION_NAME, log, whileDown: 'log streams poll until it is back', backoffMs: options.backoffMs,
      onNotification: (n) => this.wake(n.payload || undefined),
      // Lines committed while nobody listened were not announced.
      onUp: () => this.wake(),
    });
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Follows a run until the returned function is called; the watcher hears the run's state at once. */
  watch(w: LogWatcher): () => void {
    if (this.stopped) throw new Error('log follower stopped');
    this.watchers.add(w);
    this.start();
    this.wake(w.runId);
    return () => {
      this.watchers.delete(w);
    };
  }

  /** Ends every stream (`stopping`), then stops listening. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await Promise.all([...this.watchers].map((w) => w.stopping().catch(() => undefined)));
    this.watchers.clear();
    await this.connection?.stop();
    await this.checking;
  }

  private start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.poll = setInterval(() => this.wake(), this.options.pollMs ?? 1_000);
    this.poll.unref();
    this.connection?.start();
  }

  /** Asks for a check of one run (or all): coalesced, one query at a time. */
  private wake(runId?: string): void {
    if (this.stopped || !this.watchers.size) return;
    if (runId === undefined) this.due = 'all';
    else if (this.due !== 'all') this.due.add(runId);
    this.checking ??= this.check().finally(() => {
      this.checking = undefined;
      if (this.due === 'all' || this.due.size) this.wake();
    });
  }

  private async check(): Promise<void> {
    const due = this.due;
    this.due = new Set();
    const watched = [...this.watchers].filter((w) => due === 'all' || due.has(w.runId));
    const ids = [...new Set(watched.map((w) => w.runId))];
    if (!ids.length) return;
    let rows: { id: string; status: RunStatus; log_seq: number }[];
    try {
      rows = await sql(this.orm, 'select id, status, log_seq from runs where id = any(?::uuid[])', [ids]);
    } catch (err) {
      // The next poll tries again; streams keep what they have.
      this.log.warn({ err: (err as Error).message }, 'log streams: reading the state of followed runs failed');
      return;
    }
    const byId = new Map(rows.map((r) => [r.id, { status: r.status, logSeq: r.log_seq }]));
    for (const w of watched) if (this.watchers.has(w)) w.changed(byId.get(w.runId) ?? null);
  }
}
