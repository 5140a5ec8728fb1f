import { Migration } from '@mikro-orm/migrations';

/** What started a run, as its steps read it (`trigger.type`, `trigger.body`…): set by triggers and the execute route. */
export class Migration20261130250000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table runs add column trigger jsonb`);
  }
}
