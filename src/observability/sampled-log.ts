import type { Logger } from 'pino';

/**
 * A warning for something that may arrive in floods (unauthenticated requests): at most one line
 * per `intervalMs`, carrying how many were suppressed since the previous line.
 */
export class SampledWarning {
  private lastAt = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Pick<Logger, 'warn'>,
    private readonly message: string,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  note(fields: Record<string, unknown>): void {
    const t = this.now();
    if (t - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.log.warn({ ...fields, suppressedSinceLast: this.suppressed }, this.message);
    this.lastAt = t;
    this.suppressed = 0;
  }
}
