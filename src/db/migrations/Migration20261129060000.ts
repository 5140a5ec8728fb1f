import { Migration } from '@mikro-orm/migrations';

/**
 * Engine v2: a run is claimable by any executor through `wake_at` (new work, timers, and the
 * lease expiry of a run whose executor died all live in that one column); `lease_token` fences
 * every write of the executor that holds it; `signal_seq` counts wake-ups that arrived while a
 * run was leased. `engine_version` tells v2 runs apart from those DBOS carries.
 */
export class Migration20261129060000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table runs add column engine_version text, add column lease_owner text, add column lease_token uuid,
      add column wake_at timestamptz, add column signal_seq bigint not null default 0`);
    this.addSql('create index runs_wake_at on runs (wake_at) where wake_at is not null');
  }
}
