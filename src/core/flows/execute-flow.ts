import type { Run } from '../../db/entities/run.js';
import type { Project } from '../../db/entities/project.js';
import { AppError, invalidContent } from '../../errors.js';
import type { Actor } from '../audit/audit-log.js';
import type { RunService } from '../runs/run-service.js';

/** Who starts an execution, as the run records it. */
export interface Starter {
  triggeredBy: string;
  /** The person the execution acts for when the starter is not one (a trigger's last editor). */
  requestedBy?: string | null;
  actor: Actor;
  /** A preset id: starting it again returns the execution already started. */
  id?: string;
  /** What started it, as its steps read it (`trigger.*`). */
  trigger: Record<string, unknown>;
}

/**
 * Starts an execution of a flow type in a project: the workflow platform's execute, shared by
 * `POST /flows/{id}/execute` and the triggers. A flow type disabled in the project is 409; inputs
 * are validated and defaulted, their problems 422 with paths `inputs.<name>`.
 */
export async function executeFlow(runs: RunService, target: { flowType: string; project: Project }, inputs: Record<string, unknown>, who: Starter): Promise<{ run: Run; tasksTotal: number }> {
  const { flowType, project } = target;
  if (project.settings.disabledFlowTypes?.includes(flowType)) throw new AppError('conflict', `flow ${flowType} is disabled in namespace ${project.namespace}`);
  let run: Run;
  try {
    run = await runs.start({
      payload: { ...inputs, id: flowType }, repositoryIdentifier: project.repositoryIdentifier, triggeredBy: who.triggeredBy, requestedBy: who.requestedBy ?? null, id: who.id,
      trigger: who.trigger,
    }, who.actor);
  } catch (err) {
    // The core names parameters `payload.<name>`; here they are the execution's inputs.
    if (err instanceof AppError && err.code === 'bad_request' && err.details.some((d) => d.field.startsWith('payload.')))
      throw invalidContent(err.message.replace(/^Invalid parameters/, 'Invalid inputs'), { errors: err.details.map((d) => ({ path: d.field.replace(/^payload\./, 'inputs.'), message: d.message })) });
    throw err;
  }
  return { run, tasksTotal: run.definition.steps.filter((x) => !x.compensates).length };
}
