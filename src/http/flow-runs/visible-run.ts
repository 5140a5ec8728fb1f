import type { Services } from '../../container.js';
import { personKey } from '../../core/identity/directory.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import { runIdOfName } from '../../core/runs/flow-run-records.js';
import { startedByOf } from '../../core/runs/run-permissions.js';
import type { Run } from '../../db/entities/run.js';
import { badRequest, conflict, notFound, validationFailed } from '../../errors.js';

export { CONTROL_ROLES } from '../workflow-runs/visible-run.js';

/**
 * The run a flow-run id names (its own id, or the name it was given here), if the caller may see
 * it: a run of a project the token may not access is answered exactly like a missing one.
 */
export async function visibleFlowRun(s: Services, id: string, p: Principal): Promise<Run> {
  const run = await s.store.findById(runIdOfName(id));
  if (!run || !canAccessProject(p, run.repositoryIdentifier)) throw notFound(`Flow run ${id} not found`);
  return run;
}

/** An id in use, whether or not the caller may see its run (ids are one namespace across projects). */
export const idTaken = (id: string) => conflict(`Flow run id ${id} is already taken`);

/**
 * The project a new run belongs to: the one named, else the token's only project. A project the
 * token may not access is answered as an unknown one (as `RunService.prepare` answers those).
 */
export function projectOf(p: Principal, named: string | undefined): string {
  const project = named ?? (p.projects?.length === 1 ? p.projects[0] : undefined);
  if (!project) throw validationFailed([{ field: 'project', message: 'Field required: the project (owner/repo) of the run, as this token may use several', location: 'body' }]);
  if (!canAccessProject(p, project))
    throw badRequest(`Unknown project ${project}`, [{ field: 'project', message: `project "${project}" is not registered`, location: 'body' }]);
  return project;
}

/** The caller's person number (its email, else its token name as its runs record it). */
export async function callerNumber(s: Services, p: Principal): Promise<number | null> {
  const key = personKey(startedByOf(p));
  return key ? (await s.identities.numbersOf([key])).get(key) ?? null : null;
}
