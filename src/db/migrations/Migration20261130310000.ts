import { Migration } from '@mikro-orm/migrations';

/**
 * The console's inbox lists pending approvals newest first across every project, a page at a
 * time: with this index it reads them in order and stops at the page's end instead of sorting
 * every pending approval on each load.
 */
export class Migration20261130310000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index approvals_pending_newest on approvals (requested_at desc, id desc) where status = 'pending'`);
  }
}
