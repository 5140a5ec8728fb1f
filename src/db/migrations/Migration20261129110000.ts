import { Migration } from '@mikro-orm/migrations';

/**
 * The notice outbox of Engine v2: what a run's thread must hear (its approval requests and their
 * changes, its end), written in the statement that makes the change and delivered with retries,
 * in order per run (`id` is the order).
 */
export class Migration20261129110000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table notices (
      id bigserial primary key,
      run_id uuid not null references runs(id) on delete cascade,
      kind text not null,
      approval_id uuid,
      attempts int not null default 0,
      next_at timestamptz not null default now(),
      delivered_at timestamptz,
      last_error text,
      created_at timestamptz not null default now())`);
    this.addSql(`create index notices_due on notices (next_at) where delivered_at is null`);
    this.addSql(`create index notices_run on notices (run_id, id) where delivered_at is null`);
  }
}
