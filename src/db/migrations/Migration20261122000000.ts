import { Migration } from '@mikro-orm/migrations';

/** The initial schema: projects, tokens, audit, runs, steps and log lines. */
export class Migration20261122000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table projects (
      repository_identifier text primary key,
      provider text not null,
      owners jsonb not null default '[]',
      members jsonb not null default '[]',
      slack_channel text,
      settings jsonb not null default '{"disabledFlowTypes":[],"overrides":{}}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now())`);

    this.addSql(`create table api_tokens (
      id uuid primary key,
      name text not null,
      role text not null check (role in ('owner','member','application')),
      email text,
      projects jsonb,
      token_hash text not null unique,
      created_at timestamptz not null default now(),
      last_used_at timestamptz)`);

    this.addSql(`create table audit_events (
      id uuid primary key,
      at timestamptz not null default now(),
      actor text not null,
      door text not null,
      action text not null,
      target_type text not null,
      target_id text not null,
      details jsonb)`);
    this.addSql(`create index audit_events_target on audit_events (target_type, target_id, at)`);
    this.addSql(`create index audit_events_at on audit_events (at)`);

    this.addSql(`create table runs (
      id uuid primary key,
      engine_run_id text not null unique,
      task_type text not null,
      requested_task_type text,
      flow_path text not null,
      category text not null,
      execution_mode text not null,
      repository_identifier text not null,
      status text not null,
      payload jsonb not null,
      result jsonb not null default '{}',
      definition jsonb not null,
      triggered_by text not null,
      work_item_ref jsonb,
      callback jsonb,
      parent_run_id uuid references runs(id) on delete set null,
      rerun_of_execution_id uuid,
      rerun_type text,
      schedule_path text,
      cicd_run_id text,
      cicd_run_url text,
      error text,
      log_seq integer not null default 0,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz not null default now())`);
    // Listing is always scoped to one repository and newest first; each filter gets an index that
    // keeps that order, so a page is an index range scan even with millions of runs.
    this.addSql(`create index runs_repo_created on runs (repository_identifier, created_at desc, id desc)`);
    this.addSql(`create index runs_repo_type_created on runs (repository_identifier, task_type, created_at desc)`);
    this.addSql(`create index runs_repo_category_created on runs (repository_identifier, category, created_at desc)`);
    this.addSql(`create index runs_repo_trigger_created on runs (repository_identifier, triggered_by, created_at desc)`);
    this.addSql(`create index runs_repo_mode_created on runs (repository_identifier, execution_mode, created_at desc)`);
    this.addSql(`create index runs_repo_workitem on runs (repository_identifier, (work_item_ref->>'key'), created_at desc)`);
    this.addSql(`create index runs_parent on runs (parent_run_id) where parent_run_id is not null`);
    this.addSql(`create index runs_active on runs (status) where status not in ('completed','partial','failed','cancelled','timed_out')`);

    this.addSql(`create table step_runs (
      id uuid primary key,
      run_id uuid not null references runs(id) on delete cascade,
      step_ref text not null,
      kind text not null,
      status text not null,
      attempt integer not null default 0,
      deps_completed integer not null default 0,
      deps_required integer not null default 0,
      output jsonb,
      error text,
      waiting_for text,
      started_at timestamptz,
      finished_at timestamptz,
      unique (run_id, step_ref))`);

    this.addSql(`create table log_lines (
      run_id uuid not null references runs(id) on delete cascade,
      seq integer not null,
      at timestamptz not null,
      level text not null,
      source text not null,
      log_group text not null,
      message text not null,
      primary key (run_id, seq))`);
  }
}
