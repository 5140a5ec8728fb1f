import { Migration } from '@mikro-orm/migrations';

/**
 * Project locks (`flow.lock`): one holder run per key of a project, held until that run ends. A
 * run's end deletes its rows; a row whose run has ended anyway (or is gone) is taken over by the
 * next run that asks, so no release has to have happened.
 */
export class Migration20261130260000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table flow_locks (
      repository_identifier text not null,
      lock_key text not null,
      run_id uuid not null references runs(id) on delete cascade,
      acquired_at timestamptz not null default now(),
      primary key (repository_identifier, lock_key))`);
    this.addSql(`create index flow_locks_run on flow_locks (run_id)`);
    // The runs parked on a lock (`waiting_for = 'lock:<key>'`) are found when its holder ends.
    this.addSql(`create index step_runs_waiting on step_runs (waiting_for) where status = 'waiting'`);
  }
}
