import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { TERMINAL_SQL } from '../runs/run-sql.js';


/** The answer to a run asking for a lock. */
export type LockAttempt =
  | { acquired: true; acquiredAt: Date }
  /** `holder` is null when the holder's row was not visible to this statement (it committed meanwhile): ask again. */
  | { acquired: false; holder: string | null; heldByAncestor: boolean };

/**
 * Taken when free, kept when the run holds it already (a step run again, two lock steps of one
 * run), taken over when its holder has ended or is gone: correctness never waits for a release.
 * `heldByAncestor`: a run this one is a descendant of holds it, and would wait for this one to end.
 */
const ACQUIRE = `with taken as (
    insert into flow_locks (repository_identifier, lock_key, run_id) values (?, ?, ?::uuid)
    on conflict (repository_identifier, lock_key) do update set run_id = excluded.run_id,
      acquired_at = case when flow_locks.run_id = excluded.run_id then flow_locks.acquired_at else now() end
    where flow_locks.run_id = excluded.run_id
      or not exists (select 1 from runs r where r.id = flow_locks.run_id and r.status not in (${TERMINAL_SQL}))
    returning run_id, acquired_at),
  held as (
    select run_id, acquired_at from taken
    union all select run_id, acquired_at from flow_locks
    where repository_identifier = ? and lock_key = ? and not exists (select 1 from taken))
  select h.run_id::text as run_id, (extract(epoch from h.acquired_at) * 1000)::float8 as acquired_ms,
    h.run_id <> ?::uuid and exists (
      with recursive up(id) as (select parent_run_id from runs where id = ?::uuid union select r.parent_run_id from runs r join up on r.id = up.id)
      select 1 from up where up.id = h.run_id) as ancestor
  from held h`;

/** Project locks of runs (`flow.lock`): one holder run per key of a project, until that run ends. */
export class FlowLocks {
  constructor(private readonly orm: MikroORM) {}

  async acquire(project: string, key: string, runId: string): Promise<LockAttempt> {
    const [row] = await sql<{ run_id: string; acquired_ms: number; ancestor: boolean }>(this.orm, ACQUIRE, [project, key, runId, project, key, runId, runId]);
    if (row?.run_id === runId) return { acquired: true, acquiredAt: new Date(row.acquired_ms) };
    return { acquired: false, holder: row?.run_id ?? null, heldByAncestor: row?.ancestor === true };
  }

  /**
   * Deletes the locks of runs that have ended (a run's end in the executor deletes its own; a
   * cancel or an end elsewhere leaves them to the next taker or to this); returns how many.
   */
  async releaseEnded(): Promise<number> {
    const [{ n }] = await sql<{ n: number }>(this.orm,
      `with gone as (delete from flow_locks l where not exists (select 1 from runs r where r.id = l.run_id and r.status not in (${TERMINAL_SQL})) returning 1)
       select count(*)::int as n from gone`);
    return n;
  }
}
