import { Migration } from '@mikro-orm/migrations';

/**
 * GitHub people are keyed by their numeric user id: logins can be renamed and then registered by
 * someone else. An entry linked by login alone is bound to the id of the first sender that matches.
 */
export class Migration20261129020000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table identities add column github_user_id bigint null`);
    this.addSql(`create unique index identities_github_user on identities (github_user_id) where github_user_id is not null`);
  }
}
