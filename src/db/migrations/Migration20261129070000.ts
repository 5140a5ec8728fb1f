import { Migration } from '@mikro-orm/migrations';

/**
 * Run tags (`{key: value}`, set at start): the workflow-runs API shows them and lists by them.
 * The flow's step cap (`maxParallelSteps`) is copied to the run, so listings show it without the definition.
 * A GIN index (jsonb_ops) serves both `tags ? key` and `tags @> {key: value}`.
 */
export class Migration20261129070000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table runs add column tags jsonb not null default '{}'::jsonb`);
    this.addSql(`create index runs_tags on runs using gin (tags)`);
    this.addSql(`alter table runs add column max_parallel_steps integer not null default 0`);
  }
}
