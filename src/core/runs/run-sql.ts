import { sqlList } from '../../db/sql.js';
import { TERMINAL_RUN_STATUSES } from '../status.js';

/** SQL: the statuses of a run that has ended, as a list for `status in (…)`. */
export const TERMINAL_SQL = sqlList(TERMINAL_RUN_STATUSES);

/**
 * SQL: the run `alias` has not ended — for statements that find their runs by id. Written as a
 * CASE so that the planner cannot answer it from the partial index `runs_active`: that index's
 * row estimate comes from the last ANALYZE (a few active runs) and its entries for runs that have
 * since ended stay until a vacuum, so under load a plan that scans it visits every run that ended
 * lately, on every batch, instead of one primary-key lookup per run.
 */
export const runNotEnded = (alias: string) => `(case when ${alias}.status in (${TERMINAL_SQL}) then false else true end)`;

/** SQL: the callback column names a thread to tell (not absent, not `none`). */
export const hasThread = (callback: string) => `${callback} is not null and ${callback}->>'type' <> 'none'`;

/** SQL: the run (alias) is a v2 run whose thread hears of it through the outbox. */
export const toldThroughOutbox = (run: string) => `${run}.engine_version = 'v2' and ${hasThread(`${run}.callback`)}`;

/**
 * SQL: wakes the unfinished v2 runs chosen by `where` (something they wait on changed): bumps
 * their signal counter and, unless an executor holds them, makes them claimable now. A held run
 * sees the counter moved when it is released and is woken then. The caller NOTIFYs the executors.
 */
export const signalRuns = (where: string) => `update runs set signal_seq = signal_seq + 1, updated_at = now(),
    wake_at = case when lease_token is null then now() else wake_at end
  where ${where} and engine_version = 'v2' and ${runNotEnded('runs')}`;

/** SQL: wakes the unfinished v2 parents of the runs whose ids are the parameter (their flow steps look again). */
export const WAKE_PARENTS = `update runs p set signal_seq = p.signal_seq + 1, updated_at = now(), wake_at = case when p.lease_token is null then now() else p.wake_at end
  where p.id in (select parent_run_id from runs where id = any(?::uuid[])) and p.engine_version = 'v2' and p.status not in (${TERMINAL_SQL})`;
