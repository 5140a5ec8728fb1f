import { Migration } from '@mikro-orm/migrations';

/**
 * Retention, stalled door deliveries and verified pipeline reports:
 * - indexes for the retention sweep's prune queries (oldest first, in batches);
 * - a delivery keeps what the door accepted, so one left `processing` by a crash can be processed again;
 * - terminal reports of GitHub Actions runs are held until the Actions API shows the run concluded.
 */
export class Migration20261129030000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index runs_finished_roots on runs (finished_at, id) where parent_run_id is null and finished_at is not null`);
    // A pipeline run belongs to one execution: reports naming one another execution has are refused.
    this.addSql(`create index runs_cicd_run on runs (repository_identifier, cicd_run_id) where cicd_run_id is not null`);
    this.addSql(`create index api_tokens_expires on api_tokens (expires_at) where expires_at is not null`);
    this.addSql(`create index approvals_external_requested on approvals (requested_at) where run_id is null`);
    this.addSql(`alter table inbound_deliveries add column payload jsonb`);
    this.addSql(`create index inbound_deliveries_updated on inbound_deliveries (status, updated_at)`);
    this.addSql(`create table cicd_held_reports (
      run_id uuid not null references runs(id) on delete cascade,
      status text not null,
      result jsonb,
      cicd_run_id text not null,
      cicd_run_url text,
      actor text not null,
      door text not null,
      held_at timestamptz not null default now(),
      primary key (run_id, status))`);
  }
}
