import type { CacheInvalidation, Invalidated } from './invalidation.js';

export interface TtlCacheOptions<V> {
  /** The invalidation kind this cache listens to (`token`, `project`). */
  kind: string;
  ttlMs: number;
  /** At most this many entries; the oldest go first. */
  maxEntries?: number;
  /** The id announced on a change of this value, when it differs from the cache key (tokens: key = hash, id = token id). */
  idOf?: (value: V) => string;
  /** Values for which this is false are returned but never kept. */
  keep?: (value: V) => boolean;
}

interface Entry<V> { value: V; until: number; id: string }

export interface CacheStats { hits: number; misses: number; bypassed: number }

/**
 * A read-through cache that serves entries only while the invalidation listener is live, for at
 * most `ttlMs` (a safety net behind NOTIFY). A read that raced with an invalidation is returned
 * but not kept, so an eviction cannot be undone by a slower read of the old row.
 *
 * How stale a read can be: the process that makes a change forgets the entry as soon as the change
 * commits; other replicas when its NOTIFY arrives (sent at commit, milliseconds later). While a
 * replica's listener is down it reads the database every time, and it starts empty when the
 * listener is back. Only a connection that dies without the client noticing (TCP keepalive
 * catches it eventually) or a change written to the tables outside Flowgate can go unseen, and
 * then for at most `ttlMs`.
 */
export class TtlCache<V> implements Invalidated {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly keysOfId = new Map<string, Set<string>>();
  private readonly loading = new Map<string, { generation: number; epoch: number; value: Promise<V | undefined> }>();
  /** Bumped on every eviction or clear. */
  private generation = 0;
  readonly stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };

  constructor(private readonly invalidation: CacheInvalidation, private readonly options: TtlCacheOptions<V>) {
    invalidation.subscribe(options.kind, this);
  }

  /** The cached value, or `load()`'s (kept only when nothing changed meanwhile). Misses (`undefined`) are never kept. */
  async get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (!this.invalidation.live || this.options.ttlMs <= 0) {
      this.stats.bypassed++;
      return load();
    }
    const hit = this.entries.get(key);
    if (hit && hit.until > Date.now()) {
      this.stats.hits++;
      return hit.value;
    }
    this.stats.misses++;
    const generation = this.generation;
    const epoch = this.invalidation.epoch;
    // Concurrent misses share one read, unless something was evicted since it began.
    const pending = this.loading.get(key);
    if (pending && pending.generation === generation && pending.epoch === epoch) return pending.value;
    const value = load();
    this.loading.set(key, { generation, epoch, value });
    try {
      const loaded = await value;
      if (loaded !== undefined && (this.options.keep?.(loaded) ?? true) && generation === this.generation && epoch === this.invalidation.epoch && this.invalidation.live) this.put(key, loaded);
      return loaded;
    } finally {
      if (this.loading.get(key)?.value === value) this.loading.delete(key);
    }
  }

  evict(id: string): void {
    this.generation++;
    for (const key of this.keysOfId.get(id) ?? [id]) this.entries.delete(key);
    this.keysOfId.delete(id);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.keysOfId.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private put(key: string, value: V): void {
    const id = this.options.idOf?.(value) ?? key;
    const old = this.entries.get(key);
    if (old) this.unlink(old.id, key);
    this.entries.delete(key);
    this.entries.set(key, { value, until: Date.now() + this.options.ttlMs, id });
    if (!this.keysOfId.has(id)) this.keysOfId.set(id, new Set());
    this.keysOfId.get(id)!.add(key);
    const max = this.options.maxEntries ?? 10_000;
    while (this.entries.size > max) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry<V>];
      this.entries.delete(oldest);
      this.unlink(entry.id, oldest);
    }
  }

  private unlink(id: string, key: string): void {
    const keys = this.keysOfId.get(id);
    keys?.delete(key);
    if (keys && !keys.size) this.keysOfId.delete(id);
  }
}
