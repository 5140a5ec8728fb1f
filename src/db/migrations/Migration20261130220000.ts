import { Migration } from '@mikro-orm/migrations';

/**
 * Flow documents (the workflow platform API's flows): YAML kept with the definition it compiles
 * to, in its project (whose namespace names it), with every revision of the YAML.
 * `flow_documents_version` counts changes: replicas that missed a notification see the counter move.
 */
export class Migration20261130220000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table flow_documents (
      id uuid primary key,
      repository_identifier text not null references projects(repository_identifier) on delete cascade,
      name text not null,
      description text not null default '',
      yaml_content text not null,
      definition jsonb not null,
      revision integer not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      created_by text not null,
      updated_by text not null,
      unique (repository_identifier, name))`);
    this.addSql(`create table flow_revisions (
      flow_id uuid not null references flow_documents(id) on delete cascade,
      revision integer not null,
      yaml_content text not null,
      created_at timestamptz not null default now(),
      created_by text not null,
      restored_from integer,
      primary key (flow_id, revision))`);
    this.addSql(`create sequence flow_documents_version`);
  }
}
