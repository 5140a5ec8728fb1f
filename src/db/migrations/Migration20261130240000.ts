import { Migration } from '@mikro-orm/migrations';

/**
 * The key-value store: per project (namespace), any JSON value, an optional expiry. Expired keys
 * act absent at once (reads filter them) and are pruned by the sweep.
 */
export class Migration20261130240000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table kv_entries (
      repository_identifier text not null references projects(repository_identifier) on delete cascade,
      key text not null,
      value jsonb not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      expires_at timestamptz,
      primary key (repository_identifier, key))`);
    this.addSql(`create index kv_entries_expiry on kv_entries (expires_at) where expires_at is not null`);
  }
}
