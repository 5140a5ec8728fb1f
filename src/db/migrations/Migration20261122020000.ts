import { Migration } from '@mikro-orm/migrations';

/** Per-execution tokens: an API token may be bound to one run and expire. */
export class Migration20261122020000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table api_tokens
      add column run_id uuid references runs(id) on delete cascade,
      add column expires_at timestamptz`);
    this.addSql(`create index api_tokens_run on api_tokens (run_id) where run_id is not null`);
  }
}
