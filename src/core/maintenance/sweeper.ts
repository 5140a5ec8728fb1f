import type { Logger } from 'pino';

export interface SweepTask {
  name: string;
  run(): Promise<void>;
}

/**
 * Runs housekeeping tasks now and then on every replica. Each task is idempotent, so replicas
 * sweeping at the same moment do no harm; one failing task does not stop the others.
 */
export class Sweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly tasks: SweepTask[], private readonly log: Logger, private readonly intervalMs: number) {}

  start(): void {
    const tick = () => {
      if (this.running) return;
      this.running = this.sweep().finally(() => { this.running = undefined; });
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async sweep(): Promise<void> {
    for (const task of this.tasks) {
      await task.run().catch((err) => this.log.warn({ err, task: task.name }, 'sweep task failed'));
    }
  }
}
