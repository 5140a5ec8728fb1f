import type { Services } from '../../container.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import type { Run } from '../../db/entities/run.js';
import { notFound } from '../../errors.js';

/**
 * A run the caller may see, by run id or engine run id. A run of a project the token may not
 * access is answered exactly like a missing one: this API does not reveal that it exists.
 */
export async function visibleRun(s: Services, id: string, p: Principal): Promise<Run> {
  const run = await s.store.findByIdOrEngineId(id);
  if (!run || !canAccessProject(p, run.repositoryIdentifier)) throw notFound(`Workflow run ${id} not found`);
  return run;
}
