import { Migration } from '@mikro-orm/migrations';

/** Inbound deliveries of the chat doors: a delivery is processed once, a failed one again on redelivery. */
export class Migration20261122040000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table inbound_deliveries (
      door text not null,
      delivery_id text not null,
      status text not null check (status in ('processing','done','failed')),
      attempts integer not null default 1,
      error text,
      received_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (door, delivery_id))`);
  }
}
