import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { conflict, notFound } from '../../errors.js';
import { isUuid } from '../ids.js';
import type { Trigger, TriggerKind } from './trigger.js';

interface TriggerRow {
  id: string; type: TriggerKind; name: string; flow_document_id: string | null; manifest_flow: string | null; repository_identifier: string; namespace: string;
  enabled: boolean; inputs: Record<string, unknown> | null; cron: string | null; timezone: string | null; has_secret: boolean; rate_limit_per_minute: number | null;
  last_fired_at: string | Date | null; created_at: string | Date; updated_at: string | Date; created_by: string; updated_by: string;
}

/** The columns a trigger is shown with: never the key's digest nor the secret. */
const SELECT = `select t.id, t.type, t.name, t.flow_document_id, t.manifest_flow, t.repository_identifier, p.namespace, t.enabled, t.inputs, t.cron, t.timezone,
  t.secret is not null as has_secret, t.rate_limit_per_minute, t.last_fired_at, t.created_at, t.updated_at, t.created_by, t.updated_by
  from triggers t join projects p on p.repository_identifier = t.repository_identifier`;

/** The flow type a trigger starts now: a document's current `<namespace>:<name>` (renames follow), else the manifest's. */
const FLOW_TYPE = `coalesce((select p.namespace || ':' || d.name from flow_documents d join projects p on p.repository_identifier = d.repository_identifier
  where d.id = t.flow_document_id), t.manifest_flow)`;

const date = (v: string | Date) => new Date(v);

const toTrigger = (r: TriggerRow): Trigger => ({
  id: r.id, type: r.type, name: r.name, flowId: r.flow_document_id ?? r.manifest_flow!, flowDocumentId: r.flow_document_id,
  repositoryIdentifier: r.repository_identifier, namespace: r.namespace, enabled: r.enabled, inputs: r.inputs, cron: r.cron, timezone: r.timezone,
  hasSecret: r.has_secret, rateLimitPerMinute: r.rate_limit_per_minute, lastFiredAt: r.last_fired_at ? date(r.last_fired_at) : null,
  createdAt: date(r.created_at), updatedAt: date(r.updated_at), createdBy: r.created_by, updatedBy: r.updated_by,
});

/** Every column a write sets; the secret only when `secret.set` (absent keeps it, null removes it). */
export interface TriggerColumns {
  name: string;
  enabled: boolean;
  inputs: Record<string, unknown> | null;
  cron: string | null;
  timezone: string | null;
  /** Set: a new key's digest; undefined keeps the current one. */
  keyDigest?: string;
  secret: { set: false } | { set: true; value: string | null };
  rateLimitPerMinute: number | null;
}

/** What the public endpoint needs of a webhook trigger (its secret included: never leaves the core). */
export interface WebhookTarget {
  id: string;
  repositoryIdentifier: string;
  flowType: string | null;
  inputs: Record<string, unknown> | null;
  secret: string | null;
  rateLimitPerMinute: number;
  updatedBy: string;
}

/** What a cron firing needs of its trigger, read as it is at that moment. */
export interface CronTarget {
  repositoryIdentifier: string;
  flowType: string | null;
  inputs: Record<string, unknown> | null;
  updatedBy: string;
}

const keyTaken = (err: unknown) => (err as { code?: string; constraint?: string }).code === '23505';
/** A foreign key missing at write time: the flow (or the trigger) was deleted meanwhile. */
const parentGone = (err: unknown) => (err as { code?: string }).code === '23503';

/** The triggers' rows and the webhook endpoint's bookkeeping (deliveries, rate windows), in plain SQL. */
export class TriggerStore {
  constructor(private readonly orm: MikroORM) {}

  async find(id: string): Promise<Trigger | null> {
    if (!isUuid(id)) return null;
    const [row] = await sql<TriggerRow>(this.orm, `${SELECT} where t.id = ?`, [id]);
    return row ? toTrigger(row) : null;
  }

  /** Triggers of these projects (null: all), oldest first. */
  async list(filter: { projects: readonly string[] | null; flowId?: string; type?: TriggerKind }): Promise<Trigger[]> {
    const rows = await sql<TriggerRow>(this.orm,
      `${SELECT} where (?::text[] is null or t.repository_identifier = any(?::text[]))
         and (?::text is null or coalesce(t.flow_document_id::text, t.manifest_flow) = ?) and (?::text is null or t.type = ?)
       order by t.created_at, t.id`,
      [filter.projects, filter.projects, filter.flowId ?? null, filter.flowId ?? null, filter.type ?? null, filter.type ?? null]);
    return rows.map(toTrigger);
  }

  async insert(t: { id: string; type: TriggerKind; flowDocumentId: string | null; manifestFlow: string | null; repositoryIdentifier: string; by: string } & TriggerColumns): Promise<Trigger> {
    try {
      await sql(this.orm,
        `insert into triggers (id, type, name, flow_document_id, manifest_flow, repository_identifier, enabled, inputs, cron, timezone, webhook_key_sha256, secret,
           rate_limit_per_minute, created_by, updated_by) values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?, ?)`,
        [t.id, t.type, t.name, t.flowDocumentId, t.manifestFlow, t.repositoryIdentifier, t.enabled, t.inputs === null ? null : JSON.stringify(t.inputs), t.cron, t.timezone,
          t.keyDigest ?? null, t.secret.set ? t.secret.value : null, t.rateLimitPerMinute, t.by, t.by]);
    } catch (err) {
      if (keyTaken(err)) throw conflict('This webhook key is already in use');
      if (parentGone(err)) throw notFound(`No flow ${t.flowDocumentId ?? t.manifestFlow}`);
      throw err;
    }
    return (await this.find(t.id))!;
  }

  async update(id: string, c: TriggerColumns, by: string): Promise<Trigger> {
    let rows;
    try {
      rows = await sql(this.orm,
        `update triggers set name = ?, enabled = ?, inputs = ?::jsonb, cron = ?, timezone = ?, webhook_key_sha256 = coalesce(?, webhook_key_sha256),
           secret = case when ?::boolean then ?::text else secret end, rate_limit_per_minute = ?, updated_at = now(), updated_by = ?
         where id = ? returning id`,
        [c.name, c.enabled, c.inputs === null ? null : JSON.stringify(c.inputs), c.cron, c.timezone, c.keyDigest ?? null,
          c.secret.set, c.secret.set ? c.secret.value : null, c.rateLimitPerMinute, by, id]);
    } catch (err) {
      if (keyTaken(err)) throw conflict('This webhook key is already in use');
      throw err;
    }
    if (!rows.length) throw notFound(`No trigger ${id}`);
    return (await this.find(id))!;
  }

  /** Replaces a webhook trigger's key (its digest): the old key stops working with this statement. */
  async setKey(id: string, digest: string, by: string): Promise<Trigger> {
    let rows;
    try {
      rows = await sql(this.orm, `update triggers set webhook_key_sha256 = ?, updated_at = now(), updated_by = ? where id = ? and type = 'webhook' returning id`, [digest, by, id]);
    } catch (err) {
      if (keyTaken(err)) throw conflict('This webhook key is already in use');
      throw err;
    }
    if (!rows.length) throw notFound(`No trigger ${id}`);
    return (await this.find(id))!;
  }

  async delete(id: string): Promise<boolean> {
    return (await sql(this.orm, 'delete from triggers where id = ? returning id', [id])).length > 0;
  }

  /** The enabled webhook trigger whose key has this digest: one lookup on the unique index, whatever the key. */
  async webhookTarget(digest: string): Promise<WebhookTarget | null> {
    const [r] = await sql<{ id: string; repository_identifier: string; flow_type: string | null; inputs: Record<string, unknown> | null; secret: string | null; rate_limit_per_minute: number; updated_by: string }>(this.orm,
      `select t.id, t.repository_identifier, ${FLOW_TYPE} as flow_type, t.inputs, t.secret, t.rate_limit_per_minute, t.updated_by
       from triggers t where t.webhook_key_sha256 = ? and t.enabled`, [digest]);
    return r ? { id: r.id, repositoryIdentifier: r.repository_identifier, flowType: r.flow_type, inputs: r.inputs, secret: r.secret, rateLimitPerMinute: r.rate_limit_per_minute, updatedBy: r.updated_by } : null;
  }

  /** Marks a cron trigger fired and reads what the firing needs; 'gone' when it no longer exists, null when disabled. */
  async cronFired(id: string): Promise<CronTarget | 'gone' | null> {
    const [r] = await sql<{ repository_identifier: string; flow_type: string | null; inputs: Record<string, unknown> | null; updated_by: string }>(this.orm,
      `update triggers t set last_fired_at = now() where t.id = ? and t.type = 'cron' and t.enabled
       returning t.repository_identifier, ${FLOW_TYPE} as flow_type, t.inputs, t.updated_by`, [id]);
    if (r) return { repositoryIdentifier: r.repository_identifier, flowType: r.flow_type, inputs: r.inputs, updatedBy: r.updated_by };
    const [exists] = await sql(this.orm, 'select 1 from triggers where id = ?', [id]);
    return exists ? null : 'gone';
  }

  async webhookFired(id: string): Promise<void> {
    await sql(this.orm, 'update triggers set last_fired_at = now() where id = ?', [id]);
  }

  /**
   * Counts a request in the trigger's current minute (one upsert) and returns the count so far
   * with the seconds left in the minute; null when the trigger was deleted meanwhile.
   */
  async countRequest(triggerId: string): Promise<{ hits: number; secondsLeft: number } | null> {
    try {
      const [r] = await sql<{ hits: number; seconds_left: number }>(this.orm,
        `insert into webhook_rate_windows (trigger_id, window_start, hits) values (?, date_trunc('minute', now()), 1)
         on conflict (trigger_id, window_start) do update set hits = webhook_rate_windows.hits + 1
         returning hits, ceil(extract(epoch from webhook_rate_windows.window_start + interval '1 minute' - now()))::int as seconds_left`, [triggerId]);
      return { hits: r.hits, secondsLeft: r.seconds_left };
    } catch (err) {
      if (parentGone(err)) return null;
      throw err;
    }
  }

  /**
   * Claims a delivery key for an execution id: the new id when the key is new (or its claim older
   * than 24 h), else the execution the key already started; null when the trigger is gone.
   */
  async claimDelivery(triggerId: string, keyDigest: string, executionId: string): Promise<{ executionId: string; fresh: boolean } | null> {
    try {
      const [claimed] = await sql<{ execution_id: string }>(this.orm,
        `insert into webhook_deliveries (trigger_id, delivery_key, execution_id) values (?, ?, ?)
         on conflict (trigger_id, delivery_key) do update set execution_id = excluded.execution_id, created_at = now()
           where webhook_deliveries.created_at < now() - interval '24 hours'
         returning execution_id`, [triggerId, keyDigest, executionId]);
      if (claimed) return { executionId: claimed.execution_id, fresh: true };
    } catch (err) {
      if (parentGone(err)) return null;
      throw err;
    }
    const [held] = await sql<{ execution_id: string }>(this.orm, 'select execution_id from webhook_deliveries where trigger_id = ? and delivery_key = ?', [triggerId, keyDigest]);
    return held ? { executionId: held.execution_id, fresh: false } : null;
  }

  /** Gives a key back when its execution could not be started (a retry of the delivery may succeed). */
  async releaseDelivery(triggerId: string, keyDigest: string, executionId: string): Promise<void> {
    await sql(this.orm, 'delete from webhook_deliveries where trigger_id = ? and delivery_key = ? and execution_id = ?', [triggerId, keyDigest, executionId]);
  }

  /** Deletes delivery keys older than 24 h and past rate windows, a batch at a time; returns how many went. */
  async prune(batch = 1_000): Promise<number> {
    let total = 0;
    for (const statement of [
      `delete from webhook_deliveries where (trigger_id, delivery_key) in (
         select trigger_id, delivery_key from webhook_deliveries where created_at < now() - interval '24 hours' limit ?)`,
      `delete from webhook_rate_windows where (trigger_id, window_start) in (
         select trigger_id, window_start from webhook_rate_windows where window_start < date_trunc('minute', now()) limit ?)`,
    ]) {
      for (let i = 0; i < 100; i++) {
        const [{ n }] = await sql<{ n: number }>(this.orm, `with gone as (${statement} returning 1) select count(*)::int as n from gone`, [batch]);
        total += n;
        if (n < batch) break;
      }
    }
    return total;
  }
}
