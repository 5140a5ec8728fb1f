import type { MikroORM } from '@mikro-orm/postgresql';
import type { SweepTask } from '../maintenance/sweeper.js';
import type { EnginePort } from './engine-port.js';
import type { RunStore } from './run-store.js';

const GRACE_MS = 60_000;

/**
 * A run recorded but never handed to the engine (the database or engine failed between the two,
 * and the caller got an error) would stay `queued` for ever. Such runs are failed with the reason.
 */
export function orphanSweep(orm: MikroORM, store: RunStore, engine: EnginePort): SweepTask {
  return {
    name: 'orphaned-runs',
    async run() {
      const rows = await orm.em.fork().getConnection().execute<{ id: string; engine_run_id: string }[]>(
        `select id, engine_run_id from runs where status = 'queued' and engine = 'flowgate' and execution_mode = 'flow'
           and created_at < ? order by created_at limit 100`, [new Date(Date.now() - GRACE_MS)]);
      for (const r of rows) {
        if (await engine.knows(r.engine_run_id)) continue;
        await store.finish(r.id, 'failed', undefined, 'The run was recorded but never started (the engine or database was unavailable)', [
          { level: 'error', source: 'engine', group: 'run', message: 'Run failed: it was recorded but never started' },
        ]);
      }
    },
  };
}
