import pg from 'pg';
import type { Logger } from 'pino';
import type { Project } from '../db/entities/project.js';
import type { RunStatus } from '../core/status.js';
import { claimRuns, extendLeases, type LeasedRun } from './claim.js';
import { flushRuns, type RunFlush } from './flush.js';
import { LeaseLost, workRun, type WorkDeps } from './run-work.js';
import { signalRun } from './signal.js';

/** The channel intake and signals NOTIFY on: any replica's executor wakes and claims. */
export const WAKE_CHANNEL = 'flowgate_wake';

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

export interface ExecutorDeps extends Omit<WorkDeps, 'checkpoint' | 'project' | 'extras'> {
  findProject(repositoryIdentifier: string): Promise<Project | null>;
  /** A run's end was committed (metrics, the run's thread). */
  runEnded(run: LeasedRun, status: RunStatus): void;
  log: Logger;
}

const PROJECT_TTL_MS = 2_000;

/**
 * The set-based executor: one claim in flight (what arrives meanwhile goes in the next one, so
 * batches grow with load), runs advanced in memory, one flush in flight carrying every run's
 * writes. It has its own pool so it can move to a worker or process of its own.
 */
export class Executor {
  private readonly pool: pg.Pool;
  private listener?: pg.Client;
  private readonly held = new Map<string, LeasedRun>();
  private readonly working = new Set<Promise<void>>();
  private claiming = false;
  private again = false;
  private stopped = true;
  private queue: { flush: RunFlush; done(ok: boolean): void }[] = [];
  private flushing = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly projects = new Map<string, { at: number; project: Promise<Project | null> }>();

  private extras?: WorkDeps['extras'];

  constructor(private readonly options: ExecutorOptions, private readonly deps: ExecutorDeps) {
    this.pool = new pg.Pool({ connectionString: options.databaseUrl, max: 4, connectionTimeoutMillis: 3_000 });
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
    const woke = await signalRun(this.pool, runId);
    if (woke) this.wake();
    return woke;
  }

  async start(): Promise<void> {
    if (!this.extras) throw new Error('executor started before its services were set');
    this.stopped = false;
    const listener = new pg.Client({ connectionString: this.options.databaseUrl });
    listener.on('notification', () => this.wake());
    listener.on('error', (err) => this.deps.log.warn({ err: err.message }, 'executor: LISTEN connection lost; polling until restart'));
    await listener.connect();
    await listener.query(`listen ${WAKE_CHANNEL}`);
    this.listener = listener;
    this.timers.push(setInterval(() => this.wake(), this.options.pollMs).unref());
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(100, this.options.leaseMs / 3)).unref());
    this.wake();
  }

  /** Something may be claimable: claim now, or right after the claim in flight. */
  wake(): void {
    if (this.stopped) return;
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
        const free = this.options.maxRuns - this.held.size;
        if (free <= 0) break;
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
    const work = this.work(run).finally(() => {
      this.held.delete(run.id);
      this.working.delete(work);
      this.wake();
    });
    this.working.add(work);
  }

  private async work(run: LeasedRun): Promise<void> {
    try {
      const final = await workRun(run, {
        ...this.deps,
        project: (repo) => this.project(repo),
        checkpoint: (f) => this.submit(f),
        extras: this.extras!,
      });
      if (!(await this.submit(final))) return;
      if (final.end) this.deps.runEnded(run, final.end.status);
      else if (final.wakeAt) this.wakeAtTime(Date.parse(final.wakeAt));
    } catch (err) {
      if (err instanceof LeaseLost) return;
      // Left leased: it is claimed again when the lease expires.
      this.deps.log.error({ runId: run.id, err: (err as Error).message }, 'executor: run work failed');
    }
  }

  /** Queues a run's writes for the next flush; resolves with whether they passed the fence. */
  private submit(flush: RunFlush): Promise<boolean> {
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
          const written = await flushRuns(this.pool, batch.map((b) => b.flush));
          for (const b of batch) b.done(written.has(b.flush.id));
        } catch (err) {
          if (batch.length === 1) {
            this.deps.log.error({ runId: batch[0].flush.id, err: (err as Error).message }, 'executor: flush failed');
            batch[0].done(false);
            continue;
          }
          // One bad row fails the whole statement: retry the runs one by one to isolate it.
          for (const s of batch) {
            try {
              s.done((await flushRuns(this.pool, [s.flush])).has(s.flush.id));
            } catch (e) {
              this.deps.log.error({ runId: s.flush.id, err: (e as Error).message }, 'executor: flush failed');
              s.done(false);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** A timer this executor knows of fires here without waiting for the next poll. */
  private wakeAtTime(at: number): void {
    const ms = at - Date.now();
    if (ms >= this.options.pollMs || this.stopped) return;
    setTimeout(() => this.wake(), Math.max(0, ms) + 5).unref();
  }

  /** Keeps the leases of runs still being worked on (long steps, backoff). */
  private async heartbeat(): Promise<void> {
    const runs = [...this.held.values()].map((r) => ({ id: r.id, token: r.token }));
    if (!runs.length) return;
    try {
      await extendLeases(this.pool, runs, this.options.leaseMs);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'executor: heartbeat failed');
    }
  }

  /** Projects change rarely; a short cache keeps their read off every step. */
  private project(repo: string): Promise<Project | null> {
    const hit = this.projects.get(repo);
    if (hit && Date.now() - hit.at < PROJECT_TTL_MS) return hit.project;
    const project = this.deps.findProject(repo);
    this.projects.set(repo, { at: Date.now(), project });
    project.catch(() => this.projects.delete(repo));
    return project;
  }
}
