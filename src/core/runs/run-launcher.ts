import type { EnginePort } from './engine-port.js';

export interface LaunchableRun {
  id: string;
  engineRunId: string;
}

export interface LauncherOptions {
  /** Runs of this process that may be busy (started, not yet ended or parked) at once. */
  limit: number;
  /** A slot is given back after this long even if the run still works (a long step must not stall intake). */
  holdMs: number;
  onError(run: LaunchableRun, err: unknown): void;
}

/**
 * Hands committed runs to the engine off the request path. A start request is answered once its
 * run is committed (`queued`); the launcher then starts the workflow, keeping at most `limit`
 * runs busy so that a burst waits in the queue instead of crowding the CPU and memory. A run it
 * could not hand over (engine down, process killed) is handed over later by the orphan sweep, on
 * any replica: the workflow id is the run's, so a run handed over twice still runs once.
 */
export class RunLauncher {
  private readonly waiting: LaunchableRun[] = [];
  private readonly queued = new Set<string>();
  private readonly busy = new Map<string, NodeJS.Timeout>();

  constructor(private readonly engine: EnginePort, private readonly options: LauncherOptions) {}

  submit(run: LaunchableRun): void {
    if (this.holds(run.id)) return;
    this.queued.add(run.id);
    this.waiting.push({ id: run.id, engineRunId: run.engineRunId });
    this.pump();
  }

  /** The run no longer needs its slot: it ended, or waits for a person, an event or its children. */
  release(runId: string): void {
    const timer = this.busy.get(runId);
    if (!timer) return;
    clearTimeout(timer);
    this.busy.delete(runId);
    this.pump();
  }

  /** Whether this process already has the run, waiting or handed over. */
  holds(runId: string): boolean {
    return this.queued.has(runId) || this.busy.has(runId);
  }

  /** Runs accepted by this process and not yet handed to the engine. */
  get backlog(): number {
    return this.waiting.length;
  }

  private pump(): void {
    while (this.busy.size < this.options.limit && this.waiting.length) {
      const run = this.waiting.shift()!;
      this.queued.delete(run.id);
      this.busy.set(run.id, setTimeout(() => this.release(run.id), this.options.holdMs).unref());
      this.engine.startRun(run).catch((err) => {
        this.release(run.id);
        this.options.onError(run, err);
      });
    }
  }
}
