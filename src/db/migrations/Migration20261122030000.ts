import { Migration } from '@mikro-orm/migrations';

/** Runs registered by external engines, run locks, and the index behind a schedule's last run. */
export class Migration20261122030000 extends Migration {
  override async up(): Promise<void> {
    // 'flowgate': executed by our engine; 'external': recorded for an engine elsewhere (register-child/-scheduled).
    this.addSql(`alter table runs add column engine text not null default 'flowgate'`);
    this.addSql(`alter table runs add column rerun_payload jsonb`);
    this.addSql(`create index runs_schedule_created on runs (schedule_path, created_at desc) where schedule_path is not null`);
    this.addSql(`create table run_locks (
      lock_key text primary key,
      run_id uuid not null references runs(id) on delete cascade,
      acquired_at timestamptz not null default now())`);
    this.addSql(`create index run_locks_run on run_locks (run_id)`);
  }
}
