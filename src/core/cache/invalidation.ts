import { EventEmitter } from 'node:events';
import { ListenConnection } from '../../db/listen-connection.js';
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
  private readonly connection?: ListenConnection;
  private pid?: number;
  /** Bumped whenever the connection is lost or re-established: a read begun in one epoch is not cached in another. */
  epoch = 0;

  constructor(databaseUrl: string | undefined, log: Logger, options: InvalidationOptions = {}) {
    super();
    if (!databaseUrl) return;
    this.connection = new ListenConnection({
      databaseUrl, channels: [CACHE_CHANNEL], applicationName: LISTENER_APPLICATION_NAME, log, whileDown: 'caches bypassed until it is back', ...options,
      onNotification: (n) => {
        if (!n.payload) return;
        const at = n.payload.indexOf(':');
        if (at > 0) this.invalidate(n.payload.slice(0, at), n.payload.slice(at + 1));
      },
      onUp: async (client) => {
        this.pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
        // Changes made while nobody listened were not heard: start from nothing.
        this.clearAll();
        this.emit('up');
      },
      onDown: () => {
        this.clearAll();
        this.emit('down');
      },
    });
  }

  /** The listening connection's server process id, while live (operators: pg_stat_activity). */
  get backendPid(): number | undefined {
    return this.live ? this.pid : undefined;
  }

  get live(): boolean {
    return this.connection?.live ?? false;
  }

  subscribe(kind: string, target: Invalidated): void {
    this.subscribers.set(kind, [...(this.subscribers.get(kind) ?? []), target]);
  }

  /** Connects in the background; without a database URL caches stay bypassed. */
  start(): void {
    this.connection?.start();
  }

  async stop(): Promise<void> {
    await this.connection?.stop();
  }

  /** Announces a change to this process at once (its own NOTIFY arrives later and is harmless). */
  invalidate(kind: string, id: string): void {
    for (const s of this.subscribers.get(kind) ?? []) s.evict(id);
  }

  private clearAll(): void {
    this.epoch++;
    for (const list of this.subscribers.values()) for (const s of list) s.clear();
  }
}

/**
 * SQL that announces a change of `<kind>:<id>` to every replica when its transaction commits;
 * `id` is an SQL expression (a `?` placeholder by default). `kind` is a constant of ours.
 */
export const notifySql = (kind: string, id = '?') => `pg_notify('${CACHE_CHANNEL}', '${kind}:' || ${id})`;
