import pg from 'pg';
import type { Logger } from 'pino';

export interface ListenOptions {
  databaseUrl: string;
  channels: readonly string[];
  /** How the connection shows in pg_stat_activity. */
  applicationName: string;
  log: Logger;
  /** What is lost while the connection is down, for the warning (`caches bypassed until it is back`). */
  whileDown: string;
  onNotification(n: pg.Notification): void;
  /** Listening again (first time included): notifications sent meanwhile were not heard. */
  onUp?(client: pg.Client): Promise<void> | void;
  onDown?(): void;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * One LISTEN connection that comes back: a lost connection is replaced after a growing delay,
 * and `onUp` tells its owner to look again for what it may have missed.
 */
export class ListenConnection {
  private client?: pg.Client;
  private stopped = true;
  private failures = 0;
  private timer?: NodeJS.Timeout;
  private up = false;

  constructor(private readonly o: ListenOptions) {}

  get live(): boolean {
    return this.up;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.setDown();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.o.databaseUrl, application_name: this.o.applicationName, keepAlive: true });
    client.on('notification', (n) => {
      if (this.o.channels.includes(n.channel)) this.o.onNotification(n);
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    this.client = client;
    try {
      await client.connect();
      await client.query(this.o.channels.map((c) => `listen ${c}`).join('; '));
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    if (this.stopped || this.client !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    this.failures = 0;
    this.up = true;
    try {
      await this.o.onUp?.(client);
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.setDown();
    client.end().catch(() => undefined);
    if (this.stopped) return;
    const delay = Math.min(this.o.maxBackoffMs ?? 10_000, (this.o.backoffMs ?? 500) * 2 ** this.failures++);
    this.o.log.warn({ err: err?.message, retryInMs: delay }, `${this.o.applicationName}: LISTEN connection lost; ${this.o.whileDown}`);
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  private setDown(): void {
    if (!this.up) return;
    this.up = false;
    this.o.onDown?.();
  }
}
