import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { sql } from '../../db/sql.js';
import { GroupCommit } from '../../util/group-commit.js';
import { OutboundRefused } from '../net/guarded-fetch.js';

/** What a run's thread hears; the payload is read when the notice is delivered, so it is never stale. */
export type NoticeKind = 'run.finished' | 'approval.requested' | 'approval.updated';

export interface QueuedNotice {
  id: string;
  runId: string;
  kind: NoticeKind;
  approvalId: string | null;
  attempts: number;
  /** What the outbox's `reads` read with the notice, by name (each row as JSON, or null). */
  rows?: Record<string, unknown>;
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
  /**
   * SQL columns (`<expression> as <name>`, over the notice `alias`) read in the statement that
   * leases a notice: what its delivery needs, read as it is sent, without a statement of its own.
   */
  reads?: (alias: string) => string;
}

/** A leased notice as read: its own columns, and the rest as what was read with it. */
function queued(row: Record<string, unknown>): QueuedNotice {
  const { id, runId, kind, approvalId, attempts, ...rows } = row;
  return { id: id as string, runId: runId as string, kind: kind as NoticeKind, approvalId: approvalId as string | null, attempts: attempts as number, rows };
}

const DEFAULTS: OutboxOptions = { maxAttempts: 8, backoffMs: 1_000, leaseMs: 30_000, pollMs: 1_000 };

/** Deliveries in flight at once (each a call to Slack, GitHub, Azure DevOps or a webhook). */
const MAX_DELIVERING = 50;

/**
 * The notice outbox: rows written in the same statement as the change they tell of (a run's end
 * by the executor's flush, an approval's change by its decision), delivered by whichever replica
 * takes them, at least once, retried with backoff, and in order per run: a notice is taken only
 * when every older one of its run is delivered or given up.
 */
export class NoticeOutbox {
  private readonly options: OutboxOptions;
  private taking = false;
  private again = false;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();
  /** Takes begun so far: one begun while a mark was written may have passed over a notice that mark made due. */
  private takesBegun = 0;
  /**
   * Delivered notices are marked together, and each run's next notice is taken in the same
   * statement: one statement for the deliveries that end while the previous mark is written
   * (under load, one per round of Slack calls instead of two per notice).
   */
  private readonly marks = new GroupCommit<string, QueuedNotice | undefined>((ids) => this.markAndTakeNext(ids), { maxBatch: 500, maxInFlight: 1 });

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
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Something may be due: take it now, or right after the take in flight. */
  kick(): void {
    if (this.stopped) return;
    if (this.taking) {
      this.again = true;
      return;
    }
    void this.takeDue();
  }

  /**
   * Takes what is due while there is room, and starts each delivery on its own: a slow webhook
   * holds only its own run's next notices, and every delivery that ends looks for more at once
   * (the next notice of its run becomes due when it is marked).
   */
  private async takeDue(): Promise<void> {
    this.taking = true;
    try {
      do {
        this.again = false;
        const room = MAX_DELIVERING - this.inFlight.size;
        if (room <= 0) break;
        this.takesBegun++;
        const due = await this.take(room);
        for (const n of due) {
          const one = this.deliverRun(n).finally(() => this.inFlight.delete(one));
          this.inFlight.add(one);
        }
        if (due.length === room) this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox: could not take due notices; retrying at the next wake-up');
    } finally {
      this.taking = false;
    }
  }

  /** The notice's columns, then what `reads` reads with it. */
  private returning(alias: string): string {
    const reads = this.options.reads?.(alias);
    return `${alias}.id::text as id, ${alias}.run_id as "runId", ${alias}.kind, ${alias}.approval_id as "approvalId", ${alias}.attempts${reads ? `, ${reads}` : ''}`;
  }

  /** Leases the oldest due notice of each run that has no older one pending. */
  private async take(limit: number): Promise<QueuedNotice[]> {
    return (await sql<Record<string, unknown>>(this.orm,
      `with due as (
         select n.id from notices n
         where n.delivered_at is null and n.next_at <= now()
           and not exists (select 1 from notices o where o.run_id = n.run_id and o.delivered_at is null and o.id < n.id)
         order by n.id limit ? for update skip locked)
       update notices n set next_at = now() + make_interval(secs => ?::float8 / 1000), attempts = n.attempts + 1
       from due where n.id = due.id
       returning ${this.returning('n')}`,
      [limit, this.options.leaseMs], 'flowgate-notice-take')).map(queued);
  }

  /** Delivers a notice, then each next notice of its run that its mark made due, in order. */
  private async deliverRun(first: QueuedNotice): Promise<void> {
    let n: QueuedNotice | undefined = first;
    while (n) {
      try {
        await this.deliver(n);
      } catch (err) {
        await this.failed(n, err);
        return;
      }
      const delivered: QueuedNotice = n;
      try {
        n = await this.marks.submit(delivered.id);
      } catch (err) {
        // Delivered but not marked: its lease lapses and it is delivered again (at least once).
        this.log.warn({ runId: delivered.runId, err: (err as Error).message }, 'outbox: delivered notice not marked; it will be delivered again');
        return;
      }
    }
  }

  /**
   * Marks notices delivered and leases the next notice of each of their runs, if it is due. A
   * take that ran meanwhile could not see those as due yet (their predecessor was unmarked in its
   * snapshot): it is looked at again.
   */
  private async markAndTakeNext(ids: string[]): Promise<(QueuedNotice | undefined)[]> {
    const begun = this.takesBegun;
    const next = await sql<Record<string, unknown> & { after: string }>(this.orm,
      // The ids travel as a JSON array, not `any(?::bigint[])`: the planner then costs its plan the
      // same with and without their values, so the prepared statement keeps one generic plan.
      // With an array every custom plan looked cheaper, and each call was planned anew (0.8 ms).
      `with marked as (update notices set delivered_at = now(), last_error = null
           where id in (select value::bigint from jsonb_array_elements_text(?::jsonb)) returning id, run_id),
         next as (
           select m.id as after, n.id from marked m cross join lateral (
             select n.id, n.next_at from notices n where n.run_id = m.run_id and n.delivered_at is null and n.id > m.id order by n.id limit 1) n
           where n.next_at <= now()
             and not exists (select 1 from notices o where o.run_id = m.run_id and o.delivered_at is null and o.id < n.id
               and o.id not in (select value::bigint from jsonb_array_elements_text(?::jsonb))))
       update notices t set next_at = now() + make_interval(secs => ?::float8 / 1000), attempts = t.attempts + 1
       from next where t.id = next.id and t.delivered_at is null and t.next_at <= now()
       returning next.after::text as after, ${this.returning('t')}`,
      [JSON.stringify(ids), JSON.stringify(ids), this.options.leaseMs], 'flowgate-notice-mark');
    if (this.takesBegun !== begun || this.taking) this.kick();
    const after = new Map(next.map(({ after: prev, ...n }) => [prev, queued(n)]));
    return ids.map((id) => after.get(id));
  }

  /** Retried later with backoff, or given up (refused, or out of attempts). */
  private async failed(n: QueuedNotice, err: unknown): Promise<void> {
    const message = (err as Error).message;
    const final = err instanceof NoticeRefused || err instanceof OutboundRefused || n.attempts >= this.options.maxAttempts;
    const delay = this.options.backoffMs * 2 ** (n.attempts - 1);
    try {
      // A notice given up is closed (delivered_at set, its error kept), so its run's next notices go on.
      await sql(this.orm,
        `update notices set last_error = ?, delivered_at = case when ?::boolean then now() end, next_at = now() + make_interval(secs => ?::float8 / 1000)
         where id = ?::bigint`, [message, final, delay, n.id], 'flowgate-notice-failed');
      if (final) await this.gaveUp(n, message);
    } catch (e) {
      this.log.warn({ runId: n.runId, err: (e as Error).message }, 'outbox: failed delivery not recorded (its lease lapses and it is retried)');
    }
    // Given up: its run's next notice is due now. Else wake when the retry is due, not at the next poll.
    if (final) this.kick();
    else if (delay < this.options.pollMs) setTimeout(() => this.kick(), delay + 5).unref();
  }
}
