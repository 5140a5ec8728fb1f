import { Migration } from '@mikro-orm/migrations';

/**
 * Engine v2 run control and run timeouts.
 * `runs.control_hold_until`: a control action (skip, force-complete, retry, replay) is changing
 * the run's step rows; claims leave the run alone until then, so no executor works on it meanwhile.
 * `runs.expires_at`: when a run with a `timeout` becomes `timed_out`.
 * `step_runs.overridden_by`: who skipped or force-completed the step (its row is then an outcome
 * the executor keeps, not one it derives again).
 */
export class Migration20261129100000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table runs add column control_hold_until timestamptz, add column expires_at timestamptz`);
    this.addSql(`alter table step_runs add column overridden_by text`);
  }
}
