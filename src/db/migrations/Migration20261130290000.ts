import { Migration } from '@mikro-orm/migrations';

/**
 * Door deliveries are processed off the engine, with `inbound_deliveries` as their queue: the
 * results of a delivery's steps are recorded with it (so processing it again after a crash does
 * not repeat them), and the replica that took it is named (so its next start takes up at once what
 * it left processing).
 */
export class Migration20261130290000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table inbound_deliveries add column steps jsonb`);
    this.addSql(`alter table inbound_deliveries add column owner text`);
  }
}
