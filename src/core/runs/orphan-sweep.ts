import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { SweepTask } from '../maintenance/sweeper.js';
import type { EnginePort } from './engine-port.js';
import type { RunLauncher } from './run-launcher.js';

/** Younger runs are still on their way through some process's launcher. */
const GRACE_MS = 10_000;

/**
 * A run committed but never handed to the engine (its process died, or the engine was down at
 * the time) would stay `queued` for ever. The sweep hands such runs over; the request that
 * recorded them was answered, so they must run. It also resumes workflows of this process that
 * stopped without ending because a checkpoint could not be written, and dispatches cicd runs whose
 * dispatch never started. Runs of the v2 executor are claimable once committed and never go to DBOS.
 */
export function orphanSweep(orm: MikroORM, launcher: RunLauncher, engine: EnginePort, log: Logger, dispatch?: (runId: string) => Promise<void>): SweepTask {
  return {
    name: 'orphaned-runs',
    async run() {
      const rows = await orm.em.fork().getConnection().execute<{ id: string; engine_run_id: string }[]>(
        `select id, engine_run_id from runs where status = 'queued' and engine = 'flowgate' and execution_mode = 'flow'
           and engine_version is null and parent_run_id is null and created_at < ? order by created_at limit 500`, [new Date(Date.now() - GRACE_MS)]);
      for (const r of rows) {
        // This process's own backlog is on its way; asking the engine about each would be wasted I/O.
        if (launcher.holds(r.id) || await engine.knows(r.engine_run_id)) continue;
        launcher.submit({ id: r.id, engineRunId: r.engine_run_id });
      }
      // A cicd run committed but whose dispatch never started (its process died between the two):
      // its dispatch workflow has the run's engine run id, so starting it again is safe.
      const cicd = dispatch ? await orm.em.fork().getConnection().execute<{ id: string; engine_run_id: string }[]>(
        `select id, engine_run_id from runs where status = 'queued' and execution_mode = 'cicd' and created_at < ? order by created_at limit 100`,
        [new Date(Date.now() - GRACE_MS)]) : [];
      for (const r of cicd) {
        if (await engine.knows(r.engine_run_id)) continue;
        log.warn({ runId: r.id }, 'a cicd run was never dispatched; dispatching it now');
        await dispatch!(r.id).catch((err) => log.warn({ runId: r.id, err: (err as Error).message }, 'cicd dispatch of an orphaned run failed; the next sweep tries again'));
      }
      const revived = await engine.reviveStalled();
      if (revived.length) log.warn({ workflows: revived.length }, 'workflows stalled by a lost checkpoint were resumed');
    },
  };
}
