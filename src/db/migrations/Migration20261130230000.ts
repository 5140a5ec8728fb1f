import { Migration } from '@mikro-orm/migrations';

/**
 * Triggers of the workflow platform API: cron (each also a schedule `trigger-<id>`) and webhook.
 * A trigger runs a flow document (deleted with it) or a manifest flow type, in a project. A webhook
 * key is kept only as its SHA-256 (hex), unique: the public endpoint finds its trigger by that one
 * index. Webhook deliveries remember an `Idempotency-Key` for 24 h; rate windows count requests per
 * trigger and minute. Both are pruned by the sweep.
 */
export class Migration20261130230000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table triggers (
      id uuid primary key,
      type text not null check (type in ('cron', 'webhook')),
      name text not null,
      flow_document_id uuid references flow_documents(id) on delete cascade,
      manifest_flow text,
      repository_identifier text not null references projects(repository_identifier) on delete cascade,
      enabled boolean not null,
      inputs jsonb,
      cron text,
      timezone text,
      webhook_key_sha256 text unique,
      secret text,
      rate_limit_per_minute integer,
      last_fired_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      created_by text not null,
      updated_by text not null,
      check ((flow_document_id is null) <> (manifest_flow is null)),
      check (type = 'cron' and cron is not null and webhook_key_sha256 is null
          or type = 'webhook' and webhook_key_sha256 is not null and cron is null and rate_limit_per_minute is not null))`);
    this.addSql('create index triggers_flow_document on triggers (flow_document_id)');
    this.addSql('create index triggers_project on triggers (repository_identifier)');
    this.addSql(`create table webhook_deliveries (
      trigger_id uuid not null references triggers(id) on delete cascade,
      delivery_key text not null,
      execution_id uuid not null,
      created_at timestamptz not null default now(),
      primary key (trigger_id, delivery_key))`);
    this.addSql('create index webhook_deliveries_created on webhook_deliveries (created_at)');
    this.addSql(`create table webhook_rate_windows (
      trigger_id uuid not null references triggers(id) on delete cascade,
      window_start timestamptz not null,
      hits integer not null,
      primary key (trigger_id, window_start))`);
    this.addSql('create index webhook_rate_windows_start on webhook_rate_windows (window_start)');
  }
}
