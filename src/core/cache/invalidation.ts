import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';

/** The channel every replica listens on; a payload is `<kind>:<id>` (the id may itself contain `:`). */
export const CACHE_CHANNEL = 'flowgate_cache';
/** How the listener's connection shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'flowgate-cache-listener';

/** What a cache does when a change is announced: forget one entry, or everything (notifications may have been missed). */
export interface Invalidated {
  evict(id: string): void;
  clear(): void;
}

export interface InvalidationOptions {
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * One LISTEN connection per process for cache invalidation across replicas (separate from the
 * executor's wake-up connection). Caches may serve entries only while `live`: from the moment the
 * connection is lost until LISTEN is back, a change on another replica could go unseen, so caches
 * are bypassed, and on reconnecting every cache is cleared. Emits `up` and `down`.
 */
export class CacheInvalidation extends EventEmitter {
  private readonly subscribers = new Map<string, Invalidated[]>();
  private client?: pg.Client;
  private isLive = false;
  private stopped = true;
  private failures = 0;
  private pid?: number;
  private timer?: NodeJS.Timeout;
  /** Bumped whenever the connection is lost or re-established: a read begun in one epoch is not cached in another. */
  epoch = 0;

  constructor(private readonly databaseUrl: string | undefined, private readonly log: Logger, private readonly options: InvalidationOptions = {}) {
    super();
  }

  /** The listening connection's server process id, while live (operators: pg_stat_activity). */
  get backendPid(): number | undefined {
    return this.isLive ? this.pid : undefined;
  }

  get live(): boolean {
    return this.isLive;
  }

  subscribe(kind: string, target: Invalidated): void {
    this.subscribers.set(kind, [...(this.subscribers.get(kind) ?? []), target]);
  }

  /** Connects in the background; without a database URL caches stay bypassed. */
  start(): void {
    if (!this.databaseUrl || !this.stopped) return;
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

  /** Announces a change to this process at once (its own NOTIFY arrives later and is harmless). */
  invalidate(kind: string, id: string): void {
    for (const s of this.subscribers.get(kind) ?? []) s.evict(id);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: LISTENER_APPLICATION_NAME, keepAlive: true });
    client.on('notification', (n) => {
      if (n.channel !== CACHE_CHANNEL || !n.payload) return;
      const at = n.payload.indexOf(':');
      if (at > 0) this.invalidate(n.payload.slice(0, at), n.payload.slice(at + 1));
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    this.client = client;
    try {
      await client.connect();
      await client.query(`listen ${CACHE_CHANNEL}`);
      this.pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    if (this.stopped || this.client !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    this.failures = 0;
    // Changes made while nobody listened were not heard: start from nothing.
    for (const list of this.subscribers.values()) for (const s of list) s.clear();
    this.epoch++;
    this.isLive = true;
    this.emit('up');
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.setDown();
    client.end().catch(() => undefined);
    if (this.stopped) return;
    const delay = Math.min(this.options.maxBackoffMs ?? 10_000, (this.options.backoffMs ?? 500) * 2 ** this.failures++);
    this.log.warn({ err: err?.message, retryInMs: delay }, 'cache invalidation: LISTEN connection lost; caches bypassed until it is back');
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  private setDown(): void {
    this.epoch++;
    if (!this.isLive) return;
    this.isLive = false;
    for (const list of this.subscribers.values()) for (const s of list) s.clear();
    this.emit('down');
  }
}

/**
 * SQL that announces a change of `<kind>:<id>` to every replica when its transaction commits;
 * `id` is an SQL expression (a `?` placeholder by default). `kind` is a constant of ours.
 */
export const notifySql = (kind: string, id = '?') => `pg_notify('${CACHE_CHANNEL}', '${kind}:' || ${id})`;
