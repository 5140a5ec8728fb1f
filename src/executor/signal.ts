import type pg from 'pg';
import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../db/sql.js';
import { signalRuns } from '../core/runs/run-sql.js';


/**
 * Wakes a v2 run after something it waits on changed (an approval decided): bumps its signal
 * counter and, unless an executor holds it, makes it claimable now; NOTIFY tells every replica.
 * A held run sees the counter moved when it is released and is woken then. False for a run v2
 * does not carry (or that has ended).
 */
const SIGNAL = `with w as (${signalRuns('id = $1')} returning id)
  select w.id, pg_notify('flowgate_wake', $2) from w`;

/** `mark`: the NOTIFY's payload, the signalling process's executor mark (its own listener ignores it). */
export async function signalRun(pool: pg.Pool, runId: string, mark: string): Promise<boolean> {
  const { rows } = await pool.query({ name: 'flowgate-v2-signal', text: SIGNAL, values: [runId, mark] });
  return rows.length > 0;
}

/**
 * The same through the ORM's pool, for a process that runs no executor (FLOWGATE_ENGINE=dbos
 * beside v2 replicas, as during an upgrade): a decision it records still wakes a v2 run.
 */
export async function signalRunVia(orm: MikroORM, runId: string): Promise<boolean> {
  return (await sql(orm, SIGNAL, [runId, ''])).length > 0;
}
