import { Migration } from '@mikro-orm/migrations';

/**
 * A project's namespace: the workflow platform API names projects by it (`production`,
 * `acme.app`). One to one and unique. Existing projects get the repository identifier lower-cased
 * with `/` → `.` and characters outside the grammar → `-`, cut to 63, with a `-<n>` suffix where two
 * would collide.
 */
export class Migration20261130210000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table projects add column namespace text`);
    this.addSql(`with derived as (
        select repository_identifier, left(regexp_replace(regexp_replace(lower(replace(repository_identifier, '/', '.')), '[^a-z0-9._-]', '-', 'g'), '^[^a-z0-9]+', ''), 56) as base
        from projects),
      numbered as (select repository_identifier, base, row_number() over (partition by base order by repository_identifier) as n from derived)
      update projects p set namespace = case when n.n = 1 then coalesce(nullif(n.base, ''), 'p') else coalesce(nullif(n.base, ''), 'p') || '-' || n.n end
      from numbered n where n.repository_identifier = p.repository_identifier`);
    this.addSql(`alter table projects alter column namespace set not null`);
    this.addSql(`create unique index projects_namespace on projects (namespace)`);
  }
}
