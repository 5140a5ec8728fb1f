import { Migration } from '@mikro-orm/migrations';

/**
 * The person a run acts for when that is not who (or what) triggered it: a scheduled run's
 * `triggered_by` is `cron`, but its approvals treat the schedule's author as the requester.
 * Null means `triggered_by` is the requester.
 */
export class Migration20261129000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table runs add column requested_by text null`);
  }
}
