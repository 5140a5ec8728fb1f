import { Migration } from '@mikro-orm/migrations';

/** A Slack thread's project is the project of the first run posted to it: found through this index, not a scan of every run. */
export class Migration20261129050000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index runs_slack_thread on runs ((callback->'slack'->>'channel'), (callback->'slack'->>'threadTs'), created_at)
      where callback->>'type' = 'slack' and parent_run_id is null`);
  }
}
