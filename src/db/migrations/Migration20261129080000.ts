import { Migration } from '@mikro-orm/migrations';

/**
 * Per-attempt history of a step: `[{attempt, status, error, startedAt, finishedAt}]`, appended by
 * the engine's retry loop in the statements that already record the step's start and end.
 */
export class Migration20261129080000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table step_runs add column attempts jsonb not null default '[]'::jsonb`);
  }
}
