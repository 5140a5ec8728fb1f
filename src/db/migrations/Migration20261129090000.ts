import { Migration } from '@mikro-orm/migrations';

/**
 * Engine v2 events and cancel with compensation.
 * `run_events`: events delivered to a v2 run, kept until a `wait_for_event` step takes one
 * (`consumed_by` = its step ref), so an event that arrives before the step waits is not lost; a
 * retried delivery with the same idempotency key is one row.
 * `runs.cancel_requested`: why a v2 run whose flow compensates was asked to stop; the executor
 * cancels its running steps, runs the compensations and ends it `cancelled`.
 */
export class Migration20261129090000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table run_events (
      id uuid primary key,
      run_id uuid not null references runs(id) on delete cascade,
      event text not null,
      payload jsonb,
      sent_by text not null,
      idempotency_key text,
      consumed_by text,
      created_at timestamptz not null default now())`);
    this.addSql(`create unique index run_events_key on run_events (run_id, idempotency_key) where idempotency_key is not null`);
    this.addSql(`create index run_events_run on run_events (run_id, created_at)`);
    this.addSql(`alter table runs add column cancel_requested text`);
  }
}
