import { Migration } from '@mikro-orm/migrations';

/**
 * The read-only `viewer` role, and who created a token: a token other than an unscoped owner
 * lists and revokes only the tokens it created (and itself). A revoked creator leaves null.
 */
export class Migration20261129010000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table api_tokens drop constraint if exists api_tokens_role_check`);
    this.addSql(`alter table api_tokens add constraint api_tokens_role_check check (role in ('owner','member','application','viewer'))`);
    this.addSql(`alter table api_tokens add column created_by uuid null references api_tokens(id) on delete set null`);
    this.addSql(`create index api_tokens_created_by on api_tokens (created_by) where created_by is not null`);
  }
}
