import { Migration } from '@mikro-orm/migrations';

/**
 * The workflow a step runs (and waits) in: its own child workflow when it runs beside other steps,
 * the run's workflow when it runs alone. Messages for a waiting step (decisions, events) go there.
 */
export class Migration20261122060000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table step_runs add column workflow_id text null`);
  }
}
