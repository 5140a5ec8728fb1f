import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';

/** What a key may be: 1–255 of `[A-Za-z0-9._:/-]`, no leading, trailing or double `/`. */
export const KV_KEY = /^(?!\/)(?!.*\/\/)(?!.*\/$)[A-Za-z0-9._:/-]{1,255}$/;
/** Values over this size (as JSON) are refused. */
export const KV_MAX_VALUE_BYTES = 64 * 1024;
/** Keys per namespace. */
export const KV_MAX_KEYS = 10_000;

export interface KvEntry {
  key: string;
  value: unknown;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
}

/** Why a write was refused; the caller words it in its own dialect (a step failure, an HTTP answer). */
export class KvRefusal extends Error {
  constructor(readonly reason: 'too_large' | 'quota' | 'not_a_number', message: string) {
    super(message);
    this.name = 'KvRefusal';
  }
}

// The pool hands timestamps over as text: made Dates here.
type Stamp = Date | string;
interface Row { key: string; value: unknown; created_at: Stamp; updated_at: Stamp; expires_at: Stamp | null }
const date = (v: Stamp) => new Date(v);
const toEntry = (r: Row): KvEntry => ({ key: r.key, value: r.value, createdAt: date(r.created_at), updatedAt: date(r.updated_at), expiresAt: r.expires_at === null ? null : date(r.expires_at) });
const LIVE = '(expires_at is null or expires_at > now())';

/**
 * Per-project key-value entries, shared by the `kv.*` plugins and the KV API. Every operation is
 * one statement; an expired key is absent to every read and replaced by a write as if new.
 */
export class KvStore {
  constructor(private readonly orm: MikroORM) {}

  async get(project: string, key: string): Promise<KvEntry | null> {
    const [row] = await sql<Row>(this.orm, `select key, value, created_at, updated_at, expires_at from kv_entries where repository_identifier = ? and key = ? and ${LIVE}`, [project, key]);
    return row ? toEntry(row) : null;
  }

  /** Sets a value (a TTL in seconds, or none: a set without one clears an earlier expiry); tells whether the key was new. */
  async set(project: string, key: string, value: unknown, ttlSeconds?: number): Promise<{ entry: KvEntry; created: boolean }> {
    const json = JSON.stringify(value ?? null);
    if (Buffer.byteLength(json) > KV_MAX_VALUE_BYTES) throw new KvRefusal('too_large', `value of ${key} is ${Buffer.byteLength(json)} bytes; at most ${KV_MAX_VALUE_BYTES}`);
    const rows = await sql<Row & { created: boolean }>(this.orm,
      `with before as (select ${LIVE} as live from kv_entries where repository_identifier = ? and key = ?),
         room as (select count(*) < ? as ok from kv_entries where repository_identifier = ? and ${LIVE})
       insert into kv_entries (repository_identifier, key, value, expires_at)
         select ?, ?, ?::jsonb, case when ?::float8 is null then null else now() + make_interval(secs => ?::float8) end
         where exists (select 1 from before where live) or (select ok from room)
       on conflict (repository_identifier, key) do update set value = excluded.value, expires_at = excluded.expires_at, updated_at = now(),
         created_at = case when kv_entries.expires_at is not null and kv_entries.expires_at <= now() then now() else kv_entries.created_at end
       returning key, value, created_at, updated_at, expires_at, not coalesce((select live from before), false) as created`,
      [project, key, KV_MAX_KEYS, project, project, key, json, ttlSeconds ?? null, ttlSeconds ?? null]);
    if (!rows.length) throw new KvRefusal('quota', `namespace holds ${KV_MAX_KEYS} keys already`);
    return { entry: toEntry(rows[0]), created: rows[0].created };
  }

  async delete(project: string, key: string): Promise<boolean> {
    const rows = await sql(this.orm, `delete from kv_entries where repository_identifier = ? and key = ? returning ${LIVE} as live`, [project, key]);
    return rows.length > 0 && (rows[0] as { live: boolean }).live;
  }

  /** Adds `by` to a number (absent: 0) in one statement; a value that is not a number is refused. */
  async increment(project: string, key: string, by: number): Promise<number> {
    const rows = await sql<{ value: unknown }>(this.orm,
      `insert into kv_entries (repository_identifier, key, value) values (?, ?, to_jsonb(?::numeric))
       on conflict (repository_identifier, key) do update set
         value = case when kv_entries.expires_at is not null and kv_entries.expires_at <= now() then excluded.value
                      when jsonb_typeof(kv_entries.value) = 'number' then to_jsonb((kv_entries.value #>> '{}')::numeric + ?::numeric)
                      else kv_entries.value end,
         expires_at = case when kv_entries.expires_at is not null and kv_entries.expires_at <= now() then null else kv_entries.expires_at end,
         updated_at = now()
       returning value`, [project, key, by, by]);
    const v = rows[0].value;
    if (typeof v !== 'number') throw new KvRefusal('not_a_number', `${key} holds ${JSON.stringify(v).slice(0, 80)}, not a number`);
    return v;
  }

  /** Live keys by name, from after `after`, at most `limit`. */
  async list(project: string, opts: { prefix?: string; after?: string; limit: number }): Promise<(Omit<KvEntry, 'value' | 'createdAt'> & { sizeBytes: number })[]> {
    const rows = await sql<{ key: string; updated_at: Stamp; expires_at: Stamp | null; size: number }>(this.orm,
      `select key, updated_at, expires_at, octet_length(value::text) as size from kv_entries
       where repository_identifier = ? and ${LIVE} and (?::text is null or starts_with(key, ?::text)) and (?::text is null or key collate "C" > ?::text)
       order by key collate "C" limit ?`,
      [project, opts.prefix ?? null, opts.prefix ?? null, opts.after ?? null, opts.after ?? null, opts.limit]);
    return rows.map((r) => ({ key: r.key, updatedAt: date(r.updated_at), expiresAt: r.expires_at === null ? null : date(r.expires_at), sizeBytes: Number(r.size) }));
  }

  /** Removes expired entries (the sweep); returns how many. */
  async prune(): Promise<number> {
    return (await sql(this.orm, 'delete from kv_entries where expires_at <= now() returning 1')).length;
  }
}
