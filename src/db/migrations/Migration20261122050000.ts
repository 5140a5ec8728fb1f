import { Migration } from '@mikro-orm/migrations';

/** Listings leave scheduled runs out by default: indexes that serve those listings and their counts directly. */
export class Migration20261122050000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index runs_repo_unscheduled on runs (repository_identifier, created_at desc, id desc) where schedule_path is null`);
    // The per-type listing is counted from the index alone (no heap visit for schedule_path).
    this.addSql(`drop index runs_repo_type_created`);
    this.addSql(`create index runs_repo_type_created on runs (repository_identifier, task_type, created_at desc, id desc) include (schedule_path)`);
  }
}
