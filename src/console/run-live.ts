import type { Services } from '../container.js';
import { LogFollower, type LogState, type LogWatcher } from '../core/logs/log-follower.js';
import { readLogTreePage, type StreamLine, type TreePage } from '../core/logs/log-stream.js';
import type { RunStatus } from '../core/status.js';
import type { StepRun } from '../db/entities/step-run.js';
import type { EventStream } from './sse.js';

/** Lines read per query, and the most a snapshot carries (the rest follow as `log` events). */
const PAGE = 1_000;
/** How often an open stream checks that its viewer may still see the run. */
const RECHECK_MS = 5_000;

/** A line as the page's script shows it; `run` and `taskType` name the run of the tree it belongs to. */
export const presentLine = (l: StreamLine) => ({
  seq: l.seq, at: l.timestamp, level: l.level, source: l.source, group: l.group, message: l.message, run: l.executionId, taskType: l.taskType,
});

const presentStep = (r: StepRun) => ({
  ref: r.stepRef, kind: r.kind, status: r.status, attempt: r.attempt,
  startedAt: r.startedAt?.toISOString() ?? null, finishedAt: r.finishedAt?.toISOString() ?? null, error: r.error ?? null,
});

/** What a step event compares: a change of any of these is news. */
const stepKey = (r: StepRun) => `${r.status}\u0000${r.attempt}\u0000${r.finishedAt?.getTime() ?? ''}`;

/**
 * One browser's stream of a run and its child runs: a snapshot (run status, step statuses, the
 * lines after its offset), then `log` events (id = the log offset after the line, so
 * `Last-Event-ID` resumes without gaps or repeats), `step` events when a step changes, and `end`
 * once every run of the tree has ended and every line was sent. The follower tells it when any of
 * those runs may have moved.
 */
class RunStream implements LogWatcher {
  /** Why to look again: something may have moved, or the run is gone; nothing pending while undefined. */
  private wanted: 'look' | 'gone' | undefined;
  private busy = false;
  private snapshotSent = false;
  private steps = new Map<string, string>();
  private status?: RunStatus;
  private lastCheck = Date.now();
  /** The child runs followed, each with the function that stops following it. */
  private readonly children = new Map<string, () => void>();

  constructor(readonly runId: string, private sent: string, private readonly stream: EventStream, private readonly s: Services,
    private readonly allowed: () => Promise<boolean>, private readonly watchChild: (w: LogWatcher) => () => void) {
    stream.onClose(() => {
      for (const unwatch of this.children.values()) unwatch();
      this.children.clear();
    });
  }

  /** Every RECHECK_MS: the session still holds and still sees the run (signing out or losing the project ends the stream). */
  private async stillAllowed(): Promise<boolean> {
    if (Date.now() - this.lastCheck < RECHECK_MS) return true;
    this.lastCheck = Date.now();
    return this.allowed();
  }

  changed(state: LogState | null): void {
    this.want(state === null ? 'gone' : 'look');
  }

  async stopping(): Promise<void> {
    this.stream.close();
  }

  /** The run or one of its children may have moved (each page is read afresh), or the run is gone. */
  private want(why: 'look' | 'gone'): void {
    if (this.stream.closed || this.wanted === 'gone') return;
    this.wanted = why;
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.wanted !== undefined && !this.stream.closed) {
        const why = this.wanted;
        this.wanted = undefined;
        // The run is gone (retention pruned it), or the viewer may no longer see it: nothing more for this stream.
        if (why === 'gone' || !(await this.stillAllowed())) return this.stream.close();
        await this.deliver();
      }
    } catch (err) {
      // The browser reconnects with Last-Event-ID and picks up where it was.
      this.s.log.warn({ err, runId: this.runId }, 'console run stream failed');
      this.stream.close();
    } finally {
      this.busy = false;
    }
  }

  private async deliver(): Promise<void> {
    const [rows, first] = await Promise.all([this.s.store.steps(this.runId), readLogTreePage(this.s.orm, this.runId, this.sent, { limit: PAGE, offsetEach: true })]);
    let page = first;
    this.follow(page.runs);
    if (!this.snapshotSent) {
      this.snapshotSent = true;
      this.status = page.status;
      if (page.lines.length) this.sent = page.nextOffset;
      for (const r of rows) this.steps.set(r.stepRef, stepKey(r));
      this.stream.send('snapshot', { status: page.status, steps: rows.map(presentStep), lines: page.lines.map(presentLine) }, this.sent);
    } else this.send(page);
    while (page.hasMore && !this.stream.closed) {
      page = await readLogTreePage(this.s.orm, this.runId, this.sent, { limit: PAGE, offsetEach: true });
      this.send(page);
    }
    for (const r of rows) {
      const key = stepKey(r);
      if (this.steps.get(r.stepRef) === key) continue;
      this.steps.set(r.stepRef, key);
      this.stream.send('step', presentStep(r));
    }
    if (page.status !== this.status) {
      this.status = page.status;
      this.stream.send('status', { status: page.status });
    }
    // A run's last lines commit with its end: every run of the tree ended, and every line up to where each ended was sent.
    if (page.finished && !this.stream.closed) {
      this.stream.send('end', { status: page.status, offset: this.sent }, this.sent);
      this.stream.close();
    }
  }

  private send(page: TreePage): void {
    page.lines.forEach((l, i) => this.stream.send('log', presentLine(l), page.offsets[i]));
    if (page.lines.length) this.sent = page.nextOffset;
  }

  /** Follows the tree's child runs as they appear (a flow step starts them while the run goes on). */
  private follow(ids: string[]): void {
    for (const id of ids) {
      if (id === this.runId || this.children.has(id) || this.stream.closed) continue;
      this.children.set(id, this.watchChild({ runId: id, changed: () => this.want('look'), stopping: async () => this.stream.close() }));
    }
  }
}

/**
 * The run page's live streams on this process. They reuse the core's `LogFollower` (one LISTEN
 * connection and one query per wake-up for every followed run), held only while a page follows a
 * run, so a server with no console open keeps no connection for it and a stopping server's
 * streams (ended by `consoleStreams.closeAll`) release it.
 */
export class RunStreams {
  private follower?: LogFollower;

  constructor(private readonly s: Services) {}

  follow(runId: string, after: string, stream: EventStream, allowed: () => Promise<boolean>): void {
    // The browser left while the run was read: nothing to follow (its close was heard already).
    if (stream.closed) return;
    const follower = (this.follower ??= new LogFollower(this.s.orm, this.s.orm.config.get('clientUrl'), this.s.log));
    const watcher = new RunStream(runId, after, stream, this.s, allowed, (w) => follower.watch(w));
    const unwatch = follower.watch(watcher);
    stream.onClose(() => {
      unwatch();
      if (follower.size === 0 && this.follower === follower) {
        this.follower = undefined;
        void follower.stop();
      }
    });
  }
}
