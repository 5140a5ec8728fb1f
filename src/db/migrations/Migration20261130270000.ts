import { Migration } from '@mikro-orm/migrations';

/**
 * Credentials of the workflow platform API: a global one (no project) or one of a project, whose
 * namespace is read from `projects` (so it follows the project). The value is kept only as
 * AES-256-GCM ciphertext with its nonce, tag and the id of the key it was sealed under. A name is
 * unique among the globals and within a project; that a global name is not also a project's is
 * kept by the writes, under a lock on the name.
 */
export class Migration20261130270000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table credentials (
      id uuid primary key,
      name text not null,
      repository_identifier text references projects(repository_identifier) on delete cascade,
      type text not null check (type in ('secret', 'token', 'password', 'url', 'certificate')),
      description text not null default '',
      key_id text not null,
      nonce bytea not null,
      ciphertext bytea not null,
      tag bytea not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      created_by text not null,
      updated_by text not null)`);
    this.addSql('create unique index credentials_project_name on credentials (repository_identifier, name) where repository_identifier is not null');
    this.addSql('create unique index credentials_global_name on credentials (name) where repository_identifier is null');
    // Rotation finds the rows not under the current key.
    this.addSql('create index credentials_key on credentials (key_id)');
  }
}
