import { Migration } from '@mikro-orm/migrations';

/** Approvals (with their decisions and chat coordinates) and the identity directory. */
export class Migration20261122010000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table approvals (
      id uuid primary key,
      run_id uuid references runs(id) on delete cascade,
      step_ref text,
      task_id text,
      engine text,
      engine_run_id text,
      event_key text,
      repository_identifier text,
      requested_by text not null,
      approvers jsonb,
      quorum integer not null default 1 check (quorum >= 1),
      allow_self_approval boolean not null default false,
      message text,
      context jsonb not null default '{}',
      callback jsonb,
      chat jsonb not null default '{}',
      status text not null check (status in ('pending','approved','rejected','expired','cancelled','stale')),
      decisions jsonb not null default '[]',
      resolved_by text,
      resolved_at timestamptz,
      reason text,
      requested_at timestamptz not null default now(),
      expires_at timestamptz not null)`);
    // One approval per run step: a replayed step finds the one it created.
    this.addSql(`create unique index approvals_run_step on approvals (run_id, step_ref) where run_id is not null`);
    this.addSql(`create index approvals_pending_expiry on approvals (expires_at) where status = 'pending'`);
    this.addSql(`create index approvals_repo_status on approvals (repository_identifier, status, requested_at desc)`);
    this.addSql(`create index approvals_task on approvals (task_id) where task_id is not null`);
    this.addSql(`create index approvals_slack on approvals ((chat->'slack'->>'channel'), (chat->'slack'->>'threadTs'))`);
    this.addSql(`create index approvals_github on approvals ((chat->'github'->>'repositoryIdentifier'), ((chat->'github'->>'issueNumber')))`);
    this.addSql(`create index approvals_ado on approvals ((chat->'azureDevOps'->>'repositoryIdentifier'), ((chat->'azureDevOps'->>'workItemId')))`);

    this.addSql(`create table identities (
      email text primary key,
      github_login text,
      slack_user_id text,
      ado_unique_name text,
      updated_at timestamptz not null default now())`);
    this.addSql(`create unique index identities_github on identities (lower(github_login)) where github_login is not null`);
    this.addSql(`create unique index identities_slack on identities (slack_user_id) where slack_user_id is not null`);
    this.addSql(`create unique index identities_ado on identities (lower(ado_unique_name)) where ado_unique_name is not null`);
  }
}
