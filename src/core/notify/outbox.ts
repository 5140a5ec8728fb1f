import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { sql } from '../../db/sql.js';
import { OutboundRefused } from '../net/guarded-fetch.js';

/** What a run's thread hears; the payload is read when the notice is delivered, so it is never stale. */
export type NoticeKind = 'run.finished' | 'approval.requested' | 'approval.updated';

export interface QueuedNotice {
  id: string;
  runId: string;
  kind: NoticeKind;
  approvalId: string | null;
  attempts: number;
}

/** Delivers one notice; throws to have it retried, or `NoticeRefused` when retrying cannot help. */
export type DeliverNotice = (n: QueuedNotice) => Promise<void>;

/** A delivery that will fail the same way every time (refused by the outbound policy, a 4xx). */
export class NoticeRefused extends Error {}

export interface OutboxOptions {
  /** Tries per notice before it is given up (and the next notices of its run go on). */
  maxAttempts: number;
  /** First retry delay; doubled per attempt. */
  backoffMs: number;
  /** How long a delivery in flight holds its notice (a process that died lets go after this). */
  leaseMs: number;
  /** Safety net for a missed wake-up. */
  pollMs: number;
}

const DEFAULTS: OutboxOptions = { maxAttempts: 8, backoffMs: 1_000, leaseMs: 30_000, pollMs: 1_000 };

/**
 * The notice outbox: rows written in the same statement as the change they tell of (a run's end
 * by the executor's flush, an approval's change by its decision), delivered by whichever replica
 * takes them, at least once, retried with backoff, and in order per run: a notice is taken only
 * when every older one of its run is delivered or given up.
 */
export class NoticeOutbox {
  private readonly options: OutboxOptions;
  private running = false;
  private again = false;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly orm: MikroORM,
    private readonly deliver: DeliverNotice,
    /** A notice was given up: the run's log says so (its thread never heard it). */
    private readonly gaveUp: (n: QueuedNotice, error: string) => Promise<void>,
    private readonly log: Logger,
    options: Partial<OutboxOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.options.pollMs).unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight]);
  }

  /** Something may be due: deliver now, or right after the round in flight. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const round = this.drain().finally(() => this.inFlight.delete(round));
    this.inFlight.add(round);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        const due = await this.take(50);
        // Runs side by side; each run's notices one after the other (only its oldest was taken).
        await Promise.all(due.map((n) => this.deliverOne(n)));
        if (due.length === 50) this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox: round failed; retrying at the next wake-up');
    } finally {
      this.running = false;
    }
  }

  /** Leases the oldest due notice of each run that has no older one pending. */
  private take(limit: number): Promise<QueuedNotice[]> {
    return sql<QueuedNotice>(this.orm,
      `with due as (
         select n.id from notices n
         where n.delivered_at is null and n.next_at <= now()
           and not exists (select 1 from notices o where o.run_id = n.run_id and o.delivered_at is null and o.id < n.id)
         order by n.id limit ? for update skip locked)
       update notices n set next_at = now() + make_interval(secs => ?::float8 / 1000), attempts = n.attempts + 1
       from due where n.id = due.id
       returning n.id::text as id, n.run_id as "runId", n.kind, n.approval_id as "approvalId", n.attempts`,
      [limit, this.options.leaseMs]);
  }

  private async deliverOne(n: QueuedNotice): Promise<void> {
    try {
      await this.deliver(n);
      await sql(this.orm, `update notices set delivered_at = now(), last_error = null where id = ?::bigint`, [n.id]);
    } catch (err) {
      const message = (err as Error).message;
      const final = err instanceof NoticeRefused || err instanceof OutboundRefused || n.attempts >= this.options.maxAttempts;
      const delay = this.options.backoffMs * 2 ** (n.attempts - 1);
      try {
        // A notice given up is closed (delivered_at set, its error kept), so its run's next notices go on.
        await sql(this.orm,
          `update notices set last_error = ?, delivered_at = case when ?::boolean then now() end, next_at = now() + make_interval(secs => ?::float8 / 1000)
           where id = ?::bigint`, [message, final, delay, n.id]);
        if (final) await this.gaveUp(n, message);
      } catch (e) {
        this.log.warn({ runId: n.runId, err: (e as Error).message }, 'outbox: failed delivery not recorded (its lease lapses and it is retried)');
      }
      // Wake when the retry is due, not at the next poll.
      if (!final && delay < this.options.pollMs) setTimeout(() => this.kick(), delay + 5).unref();
    }
  }
}
