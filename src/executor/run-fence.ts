import { sqlList } from '../db/sql.js';
import { TERMINAL_RUN_STATUSES } from '../core/status.js';

/**
 * SQL: the run `alias` has not ended — for statements that find their runs by id. Written as a
 * CASE so that the planner cannot answer it from the partial index `runs_active`: that index's
 * row estimate comes from the last ANALYZE (a few active runs) and its entries for runs that have
 * since ended stay until a vacuum, so under load a plan that scans it visits every run that ended
 * lately, on every batch, instead of one primary-key lookup per run.
 */
export const runNotEnded = (alias: string) => `(case when ${alias}.status in (${sqlList(TERMINAL_RUN_STATUSES)}) then false else true end)`;
