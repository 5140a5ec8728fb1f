import type { Logger } from 'pino';
import type { ApprovalEffects, ApprovalService } from './approval-service.js';

/**
 * Periodic safety net, on every replica (all of it is idempotent): expires external approvals
 * past their time, and re-sends the wake-up of decided approvals whose step still waits (a
 * process that died between committing a decision and waking the step).
 */
export class ApprovalSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly approvals: ApprovalService, private readonly effects: ApprovalEffects, private readonly log: Logger, private readonly intervalMs = 30_000) {}

  start(): void {
    const tick = () => {
      this.running = this.sweep().catch((err) => this.log.warn({ err }, 'approval sweep failed')).finally(() => { this.running = undefined; });
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
    for (const a of await this.approvals.overdueExternal()) {
      const expired = await this.approvals.expire(a.id);
      if (expired.status === 'expired') await this.effects.decided(expired);
    }
    for (const a of await this.approvals.decidedAwaitingWake()) await this.effects.decided(a);
  }
}
