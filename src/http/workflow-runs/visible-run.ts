import type { Services } from '../../container.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import type { Run } from '../../db/entities/run.js';
import { AppError, engineUnavailable, notFound } from '../../errors.js';

/**
 * A run the caller may see, by run id or engine run id. A run of a project the token may not
 * access is answered exactly like a missing one: this API does not reveal that it exists.
 */
export async function visibleRun(s: Services, id: string, p: Principal): Promise<Run> {
  const run = await s.store.findByIdOrEngineId(id);
  if (!run || !canAccessProject(p, run.repositoryIdentifier)) throw notFound(`Workflow run ${id} not found`);
  return run;
}

/** Who may control runs over this API (cancel, pause, retry…); the core decides per run. */
export const CONTROL_ROLES = ['owner', 'member', 'application'] as const;

/** A process whose engine is stopped (shutting down) refuses control rather than half-apply it. */
export function requireEngine(s: Services): void {
  if (!s.engine.isRunning()) throw engineUnavailable('Flow engine is not running');
}

export type EachOutcome<T> = { id: string; value: T; error?: undefined } | { id: string; error: AppError };

/**
 * A bulk action: each distinct id, as a run the caller may see, through `act`. A run that cannot
 * be acted on (not found, not allowed, wrong state) is that run's outcome; anything unexpected
 * stops the batch.
 */
export async function eachVisibleRun<T>(s: Services, ids: string[], p: Principal, act: (run: Run) => Promise<T>): Promise<EachOutcome<T>[]> {
  const out: EachOutcome<T>[] = [];
  for (const id of new Set(ids)) {
    try {
      out.push({ id, value: await act(await visibleRun(s, id, p)) });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      out.push({ id, error: err });
    }
  }
  return out;
}
