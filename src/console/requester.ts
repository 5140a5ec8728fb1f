import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { canAccessProject } from '../core/identity/principal.js';
import type { RunRequester } from '../core/runs/run-permissions.js';
import type { Run } from '../db/entities/run.js';
import { notFound } from '../errors.js';

/** Who acts on runs from the console: a person signed in through chat as that person, anyone else by their credential. */
export const requesterOf = (viewer: ConsoleIdentity): RunRequester =>
  viewer.kind === 'person' && viewer.person ? { person: { email: viewer.person.email }, door: 'web' } : { principal: viewer.principal, door: 'web' };

/** A run the viewer may see; any other id is "not found", so ids of other projects' runs tell nothing. */
export async function visibleRun(s: Services, id: string, viewer: ConsoleIdentity): Promise<Run> {
  const run = await s.runs.get(id).catch(() => null);
  if (!run || !canAccessProject(viewer.principal, run.repositoryIdentifier)) throw notFound(`Run ${id} not found`);
  return run;
}
