import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Project } from '../db/entities/project.js';
import type { RunStatus } from '../core/status.js';
import { claimRuns, extendLeases, recoverOwnLeases, type LeasedRun } from './claim.js';
import { flushRuns, type FlushAnswer, type RunFlush } from './flush.js';
import { LeaseLost, workRun, type RunSignals, type WorkDeps } from './run-work.js';
import { signalRun } from './signal.js';
import type { IntakeLease } from '../core/runs/run-store.js';
import { refreshStaleStatistics } from '../db/planner-statistics.js';
import { withSessionSetting } from '../db/session-settings.js';

/** How often the executor looks whether its tables' planner statistics have gone stale. */
const STATISTICS_LOOK_MS = 5_000;
/** The channel intake and signals NOTIFY on: any replica's executor wakes and claims. */
export const WAKE_CHANNEL = 'flowgate_wake';
/** The channel on which queued notices are announced: the outbox of every replica looks. */
export const NOTICE_CHANNEL = 'flowgate_notice';
/** The channel that tells the executor holding a run (payload: its id) to stop starting steps and release it. */
export const HOLD_CHANNEL = 'flowgate_hold';

/** One held run's hold signal: set once (pause, cancel, control action, lost lease), never cleared. */
class Hold implements RunSignals {
  private on = false;
  private resolve!: () => void;
  private readonly abort = new AbortController();
  readonly held = new Promise<void>((r) => (this.resolve = r));
  readonly stopped = this.abort.signal;
  isHeld(): boolean {
    return this.on;
  }
  set(): void {
    if (this.on) return;
    this.on = true;
    this.resolve();
  }
  /** Held, and what is in flight gives up: the run ended outside this executor. */
  stop(): void {
    this.set();
    this.abort.abort();
  }
}

/** A hold's NOTIFY payload: the run id, or `stop <run id>` for a run that ended (cancelled outright). */
const STOP = 'stop ';

export interface ExecutorOptions {
  databaseUrl: string;
  /** This executor's name, written as `lease_owner`. */
  owner: string;
  /** Runs held at once (the claim asks for the free slots). */
  maxRuns: number;
  /** How long a claim holds a run; the heartbeat extends it while work goes on. */
  leaseMs: number;
  /** Safety net for a lost NOTIFY and for timers: claim at least this often. */
  pollMs: number;
  /** Rows per flush statement: one bad or huge batch must not hold up every run. */
  maxFlush: number;
}

export interface ExecutorDeps extends Omit<WorkDeps, 'checkpoint' | 'project' | 'extras' | 'control'> {
  findProject(repositoryIdentifier: string): Promise<Project | null>;
  /** A run's end was committed (metrics, its stale approvals); `answer` is what its last flush said. */
  runEnded(run: LeasedRun, status: RunStatus, answer: FlushAnswer): void;
  /** Notices were queued (by a flush here, or on another replica): the outbox should look. */
  noticed(): void;
  log: Logger;
}

/**
 * The set-based executor: one claim in flight (what arrives meanwhile goes in the next one, so
 * batches grow with load), runs advanced in memory, one flush in flight carrying every run's
 * writes. It has its own pool so it can move to a worker or process of its own.
 */
export class Executor {
  private readonly pool: pg.Pool;
  private listener?: pg.Client;
  private readonly held = new Map<string, LeasedRun>();
  private readonly runHolds = new Map<string, Hold>();
  private readonly working = new Set<Promise<void>>();
  private claiming = false;
  /** The last look for work found no room: a run that ends makes room, and is followed by a look. */
  private full = false;
  private analyzing = false;
  private again = false;
  private announcing = false;
  /** Intake leases handed out and not yet adopted or given back. */
  private reserved = 0;
  private announceAgain = false;
  /**
   * The payload of this process's own wake-up and notice NOTIFYs: its listener ignores them (it
   * acted at once, without the round trip), other replicas' listeners do not. Unique per process,
   * as an owner name may be shared after a misconfiguration.
   */
  readonly mark = randomUUID();
  private stopped = false;
  /** Set by `start`: a process that leaves executing to another (FLOWGATE_EXECUTOR=off) never starts it, and only tells. */
  private started = false;
  private queue: { flush: RunFlush; done(answer: FlushAnswer | undefined): void }[] = [];
  private flushing = false;
  private timers: NodeJS.Timeout[] = [];

  private extras?: WorkDeps['extras'];

  constructor(private readonly options: ExecutorOptions, private readonly deps: ExecutorDeps) {
    // Its statements take their batches as JSON and find rows by id or by the due index, so no
    // plan depends on the values: each connection plans a statement once, not five times before
    // settling on the generic plan, and so again after every ANALYZE of a table it touches (the
    // flush takes 4 ms to plan: at intake that was a fifth of the flush's PostgreSQL time).
    this.pool = new pg.Pool({ connectionString: withSessionSetting(options.databaseUrl, 'plan_cache_mode', 'force_generic_plan'), max: 4, connectionTimeoutMillis: 3_000 });
    this.pool.on('error', (err) => deps.log.warn({ err: err.message }, 'executor: idle connection lost'));
  }

  /** Services some kinds need (approvals) that are built after the executor. */
  setExtras(extras: WorkDeps['extras']): void {
    this.extras = extras;
  }

  /** Whether this executor is working on the run now. */
  holds(runId: string): boolean {
    return this.held.has(runId);
  }

  /** Something a v2 run waits on changed: wake it (here and on every replica). False if v2 does not carry it. */
  async signal(runId: string): Promise<boolean> {
    const woke = await signalRun(this.pool, runId, this.mark);
    if (woke) this.wake();
    return woke;
  }

  /**
   * A lease for a run this process is about to commit, so that it needs no claim: the intake
   * writes the run already leased, and `adopt` starts it here once committed. Saves the claim's
   * update of the run row (and every index entry it rewrites) and its read-back. Null when this
   * executor is full or stopping: the run is then committed unleased and claimed as usual.
   */
  reserve(): IntakeLease | null {
    if (!this.started || this.stopped || this.held.size + this.reserved >= this.options.maxRuns) return null;
    this.reserved++;
    return { owner: this.options.owner, token: randomUUID(), leaseMs: this.options.leaseMs };
  }

  /** The run written with the lease was committed: work on it here. */
  adopt(run: Omit<LeasedRun, 'token' | 'signalSeq' | 'steps' | 'events' | 'children' | 'cancelRequested'>, lease: IntakeLease): void {
    this.reserved--;
    if (this.stopped) return; // its lease expires and another executor claims it
    this.begin({ ...run, token: lease.token, signalSeq: '0', steps: [], events: [], children: [], cancelRequested: null });
  }

  /** The run written with the lease was not committed. */
  unreserve(): void {
    this.reserved--;
  }

  /**
   * Runs were committed in this process: claim here, and tell the other replicas' executors with
   * one NOTIFY for however many commits arrive while one is in flight. Sent after the commit, not
   * in it (a NOTIFY per intake transaction serializes commits on PostgreSQL's notify queue lock);
   * if this process dies in between, other replicas find the runs at their next poll and this one's
   * executor at its restart.
   */
  runsCommitted(): void {
    this.wake();
    this.announce();
  }

  private announce(): void {
    if (this.announcing) {
      this.announceAgain = true;
      return;
    }
    this.announcing = true;
    void (async () => {
      try {
        do {
          this.announceAgain = false;
          // The payload names this process: its own listener ignores it (it was woken above).
          await this.pool.query({ name: 'flowgate-v2-announce', text: `select pg_notify('${WAKE_CHANNEL}', $1)`, values: [this.mark] });
        } while (this.announceAgain && !this.stopped);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'executor: could not tell other replicas of new runs; they find them at their next poll');
      } finally {
        this.announcing = false;
      }
    })();
  }

  /** Tells whichever executor works on the run to stop starting steps (it was cancelled or ended outside it). */
  async hold(runId: string): Promise<void> {
    await this.pool.query({ name: 'flowgate-v2-hold', text: `select pg_notify('${HOLD_CHANNEL}', $1)`, values: [runId] });
  }

  /**
   * `hold`, in one statement, for runs that already ended (cancelled outright): their steps in
   * flight are abandoned too, an HTTP call hung up on. Their outcomes would be dropped by the
   * flush's fence anyway. The plain hold goes too: a replica of the previous release (during an
   * upgrade) knows only that one.
   */
  async abandon(runIds: string[]): Promise<void> {
    if (!runIds.length) return;
    await this.pool.query({
      name: 'flowgate-v2-abandon',
      text: `select pg_notify('${HOLD_CHANNEL}', id), pg_notify('${HOLD_CHANNEL}', '${STOP}' || id) from unnest($1::text[]) id`,
      values: [runIds],
    });
  }

  async start(): Promise<void> {
    if (!this.extras) throw new Error('executor started before its services were set');
    this.stopped = false;
    this.started = true;
    const recovered = await recoverOwnLeases(this.pool, this.options.owner);
    if (recovered) this.deps.log.info({ runs: recovered }, 'executor: resuming runs its previous process held');
    await this.listen();
    this.timers.push(setInterval(() => this.wake(), this.options.pollMs).unref());
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(100, this.options.leaseMs / 3)).unref());
    this.timers.push(setInterval(() => void this.refreshStatistics(), STATISTICS_LOOK_MS).unref());
    this.wake();
  }

  /** Keeps the plans of the claim and flush fit for the tables' size (see refreshStaleStatistics). */
  private async refreshStatistics(): Promise<void> {
    if (this.analyzing || this.stopped) return;
    this.analyzing = true;
    try {
      const analyzed = await refreshStaleStatistics(this.pool);
      if (analyzed.length) this.deps.log.debug({ tables: analyzed }, 'executor: refreshed planner statistics');
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'executor: could not look at planner statistics');
    } finally {
      this.analyzing = false;
    }
  }

  /** Hears intake and signals from every replica; a lost connection is replaced (polling covers the gap). */
  private async listen(): Promise<void> {
    const listener = new pg.Client({ connectionString: this.options.databaseUrl });
    listener.on('notification', (n) => {
      if (n.channel === HOLD_CHANNEL) {
        const payload = n.payload ?? '';
        if (payload.startsWith(STOP)) this.runHolds.get(payload.slice(STOP.length))?.stop();
        else this.runHolds.get(payload)?.set();
      }
      // This process's own: already acted on.
      else if (n.payload === this.mark) return;
      else if (n.channel === NOTICE_CHANNEL) this.deps.noticed();
      else this.wake();
    });
    listener.on('error', (err) => {
      this.deps.log.warn({ err: err.message }, 'executor: LISTEN connection lost; reconnecting');
      this.relisten(listener);
    });
    listener.on('end', () => this.relisten(listener));
    try {
      await listener.connect();
      await listener.query(`listen ${WAKE_CHANNEL}; listen ${HOLD_CHANNEL}; listen ${NOTICE_CHANNEL}`);
    } catch (err) {
      await listener.end().catch(() => undefined);
      throw err;
    }
    this.listener = listener;
  }

  private relisten(lost: pg.Client): void {
    if (this.stopped || this.listener !== lost) return;
    this.listener = undefined;
    lost.end().catch(() => undefined);
    const retry = () => {
      if (this.stopped) return;
      // NOTIFYs sent while nobody listened are gone: look for work once listening again.
      this.listen().then(() => this.wake(), () => setTimeout(retry, 1_000).unref());
    };
    setTimeout(retry, 200).unref();
  }

  /** Something may be claimable: claim now, or right after the claim in flight. */
  wake(): void {
    if (this.stopped || !this.started) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    void this.claimLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Work in flight finishes and flushes; anything left is re-claimed elsewhere when its lease expires.
    await Promise.race([Promise.allSettled([...this.working]), new Promise((r) => setTimeout(r, 5_000).unref())]);
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }

  private async claimLoop(): Promise<void> {
    this.claiming = true;
    try {
      do {
        this.again = false;
        const free = this.options.maxRuns - this.held.size - this.reserved;
        if (free <= 0) {
          this.full = true;
          break;
        }
        this.full = false;
        const runs = await claimRuns(this.pool, this.options.owner, free, this.options.leaseMs);
        for (const run of runs) this.begin(run);
        // A full batch means more may be waiting.
        if (runs.length === free) this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'executor: claim failed; retrying at the next wake-up');
    } finally {
      this.claiming = false;
    }
  }

  private begin(run: LeasedRun): void {
    this.held.set(run.id, run);
    const hold = new Hold();
    this.runHolds.set(run.id, hold);
    const work = this.work(run, hold).finally(() => {
      // A later claim of the same run (this lease expired meanwhile) is not this work's to forget.
      if (this.held.get(run.id) === run) this.held.delete(run.id);
      if (this.runHolds.get(run.id) === hold) this.runHolds.delete(run.id);
      this.working.delete(work);
      if (this.full) this.wake();
    });
    this.working.add(work);
  }

  private async work(run: LeasedRun, hold: Hold): Promise<void> {
    try {
      const final = await workRun(run, {
        ...this.deps,
        // ProjectService caches projects and forgets them on every change, on every replica.
        project: (repo) => this.deps.findProject(repo),
        checkpoint: async (f) => {
          const answer = await this.submit(f);
          // A NOTIFY can be missed (another replica, a reconnect): the flush says it as well.
          if (answer?.hold) hold.set();
          return answer !== undefined;
        },
        control: hold,
        extras: this.extras!,
      });
      const answer = await this.submit(final);
      if (!answer) return;
      // Released but due at once (signalled while it was held, asked to stop): claimed again now.
      if (answer.due) this.wake();
      if (final.end) this.deps.runEnded(run, final.end.status, answer);
      else if (final.wakeAt) this.wakeAtTime(Date.parse(final.wakeAt));
    } catch (err) {
      if (err instanceof LeaseLost) return;
      // Left leased: it is claimed again when the lease expires.
      this.deps.log.error({ runId: run.id, err: (err as Error).message }, 'executor: run work failed');
    }
  }

  /** Queues a run's writes for the next flush; resolves with the answer if they passed the fence. */
  private submit(flush: RunFlush): Promise<FlushAnswer | undefined> {
    return new Promise((done) => {
      this.queue.push({ flush, done });
      void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.options.maxFlush);
        try {
          const written = await this.flushPatiently(batch.map((b) => b.flush));
          if ([...written.values()].some((a) => a.noticed)) this.deps.noticed();
          // Child runs created or parents woken: claimable here too (this process's NOTIFY is not heard here).
          if ([...written.values()].some((a) => a.woke)) this.wake();
          for (const b of batch) b.done(written.get(b.flush.id));
        } catch (err) {
          if (batch.length === 1) {
            this.deps.log.error({ runId: batch[0].flush.id, err: (err as Error).message }, 'executor: flush failed');
            batch[0].done(undefined);
            continue;
          }
          // One bad row fails the whole statement: retry the runs one by one to isolate it.
          for (const s of batch) {
            try {
              s.done((await flushRuns(this.pool, [s.flush], this.mark)).get(s.flush.id));
            } catch (e) {
              this.deps.log.error({ runId: s.flush.id, err: (e as Error).message }, 'executor: flush failed');
              s.done(undefined);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * A flush that failed because the database could not be reached is tried again while the runs'
   * leases may still hold (giving up would leave each run parked until its lease expires, and
   * repeat its unflushed effects); a refused or bad statement surfaces at once.
   */
  private async flushPatiently(batch: RunFlush[]): Promise<Map<string, FlushAnswer>> {
    const giveUpAt = Date.now() + this.options.leaseMs;
    let warned = false;
    for (;;) {
      try {
        return await flushRuns(this.pool, batch, this.mark);
      } catch (err) {
        if (!isConnectionError(err) || this.stopped || Date.now() >= giveUpAt) throw err;
        if (!warned) this.deps.log.warn({ runs: batch.length, err: (err as Error).message }, 'executor: database unreachable; retrying the flush');
        warned = true;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** A timer this executor knows of fires here without waiting for the next poll. */
  private wakeAtTime(at: number): void {
    const ms = at - Date.now();
    if (ms >= this.options.pollMs || this.stopped) return;
    setTimeout(() => this.wake(), Math.max(0, ms) + 5).unref();
  }

  /** Keeps the leases of runs still being worked on (long steps, backoff); a run whose lease is gone (ended, taken over) holds. */
  private async heartbeat(): Promise<void> {
    const runs = [...this.held.values()].map((r) => ({ id: r.id, token: r.token }));
    if (!runs.length) return;
    try {
      const kept = await extendLeases(this.pool, runs, this.options.leaseMs);
      for (const r of runs) if (!kept.has(r.id)) this.runHolds.get(r.id)?.set();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'executor: heartbeat failed');
    }
  }
}

/**
 * Errors that say nothing about the statement: no connection, connection lost, server shutting
 * down or starting (no SQLSTATE, a socket error, class 08 or 57P0x).
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return true;
  return code.startsWith('E') || code.startsWith('08') || /^57P0[1-3]$/.test(code);
}
