import { expressionScope } from '../core/expressions/scope.js';
import type { EngineDeps } from './engine-deps.js';
import type { EngineRun } from './engine-run.js';

/**
 * The values expressions see. `credentials` is included only when asked for, inside the
 * step that uses them, so they never reach a checkpoint, a log line or a stored output.
 */
export async function expressionContext(deps: EngineDeps, run: EngineRun, withCredentials = false): Promise<Record<string, unknown>> {
  const [steps, project] = await Promise.all([deps.store.stepOutputs(run.id), deps.projects.find(run.repositoryIdentifier)]);
  return expressionScope({
    payload: run.payload,
    steps,
    run: { id: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, triggeredBy: run.triggeredBy, parentRunId: run.parentRunId },
    project: project ? { repositoryIdentifier: project.repositoryIdentifier, provider: project.provider, owners: project.owners, members: project.members } : {},
    credentials: withCredentials ? deps.credentials : {},
  });
}
