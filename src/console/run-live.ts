import type { Services } from '../container.js';
import { LogFollower, type LogState, type LogWatcher } from '../core/logs/log-follower.js';
import { isTerminalRun, type RunStatus } from '../core/status.js';
import type { LogLine } from '../db/entities/log-line.js';
import type { StepRun } from '../db/entities/step-run.js';
import type { EventStream } from './sse.js';

/** Lines read per query, and the most a snapshot carries (the rest follow as `log` events). */
const PAGE = 1_000;
/** How often an open stream checks that its viewer may still see the run. */
const RECHECK_MS = 5_000;

export const presentLine = (l: LogLine) => ({ seq: l.seq, at: l.at.toISOString(), level: l.level, source: l.source, group: l.group, message: l.message });

const presentStep = (r: StepRun) => ({
  ref: r.stepRef, kind: r.kind, status: r.status, attempt: r.attempt,
  startedAt: r.startedAt?.toISOString() ?? null, finishedAt: r.finishedAt?.toISOString() ?? null, error: r.error ?? null,
});

/** What a step event compares: a change of any of these is news. */
const stepKey = (r: StepRun) => `${r.status}\u0000${r.attempt}\u0000${r.finishedAt?.getTime() ?? ''}`;

/**
 * One browser's stream of a run: a snapshot (run status, step statuses, the lines after its
 * offset), then `log` events (id = the line's seq, so `Last-Event-ID` resumes without gaps or
 * repeats), `step` events when a step changes, and `end` once the run has ended and every line was
 * sent. The follower tells it when the run may have moved.
 */
class RunStream implements LogWatcher {
  private latest: LogState | null | undefined;
  private busy = false;
  private snapshotSent = false;
  private steps = new Map<string, string>();
  private status?: RunStatus;
  private lastCheck = Date.now();

  constructor(readonly runId: string, private sent: number, private readonly stream: EventStream, private readonly s: Services,
    private readonly allowed: () => Promise<boolean>) {}

  /** Every RECHECK_MS: the session still holds and still sees the run (signing out or losing the project ends the stream). */
  private async stillAllowed(): Promise<boolean> {
    if (Date.now() - this.lastCheck < RECHECK_MS) return true;
    this.lastCheck = Date.now();
    return this.allowed();
  }

  changed(state: LogState | null): void {
    if (this.stream.closed) return;
    this.latest = state;
    if (!this.busy) void this.pump();
  }

  async stopping(): Promise<void> {
    this.stream.close();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.latest !== undefined && !this.stream.closed) {
        const state = this.latest;
        this.latest = undefined;
        // The run is gone (retention pruned it), or the viewer may no longer see it: nothing more for this stream.
        if (state === null || !(await this.stillAllowed())) return this.stream.close();
        await this.deliver(state);
      }
    } catch (err) {
      // The browser reconnects with Last-Event-ID and picks up where it was.
      this.s.log.warn({ err, runId: this.runId }, 'console run stream failed');
      this.stream.close();
    } finally {
      this.busy = false;
    }
  }

  private async deliver(state: LogState): Promise<void> {
    const rows = await this.s.store.steps(this.runId);
    if (!this.snapshotSent) {
      const lines = this.sent < state.logSeq ? await this.s.logs.list(this.runId, this.sent, PAGE) : [];
      if (lines.length) this.sent = lines.at(-1)!.seq;
      this.snapshotSent = true;
      this.status = state.status;
      for (const r of rows) this.steps.set(r.stepRef, stepKey(r));
      this.stream.send('snapshot', { status: state.status, logSeq: state.logSeq, steps: rows.map(presentStep), lines: lines.map(presentLine) }, this.sent);
    }
    while (this.sent < state.logSeq && !this.stream.closed) {
      const lines = await this.s.logs.list(this.runId, this.sent, PAGE);
      // Lines removed by retention: nothing more to send.
      if (!lines.length) break;
      for (const l of lines) this.stream.send('log', presentLine(l), l.seq);
      this.sent = lines.at(-1)!.seq;
    }
    for (const r of rows) {
      const key = stepKey(r);
      if (this.steps.get(r.stepRef) === key) continue;
      this.steps.set(r.stepRef, key);
      this.stream.send('step', presentStep(r));
    }
    if (state.status !== this.status) {
      this.status = state.status;
      this.stream.send('status', { status: state.status });
    }
    // A run's last lines commit with its end: seeing it ended after reading up to its log_seq means every line was sent.
    if (isTerminalRun(state.status) && !this.stream.closed) {
      this.stream.send('end', { status: state.status, logSeq: this.sent }, this.sent);
      this.stream.close();
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

  follow(runId: string, after: number, stream: EventStream, allowed: () => Promise<boolean>): void {
    // The browser left while the run was read: nothing to follow (its close was heard already).
    if (stream.closed) return;
    const watcher = new RunStream(runId, after, stream, this.s, allowed);
    const follower = (this.follower ??= new LogFollower(this.s.orm, this.s.orm.config.get('clientUrl'), this.s.log));
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
