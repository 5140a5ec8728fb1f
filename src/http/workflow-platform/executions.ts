import type { Services } from '../../container.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import { runFacts } from '../../core/runs/run-list-query.js';
import type { Run } from '../../db/entities/run.js';
import { notFound } from '../../errors.js';
import { presentExecution, presentTasks, type Execution } from './present.js';
import { triggerTypeSql, type TriggerType } from './trigger.js';

/**
 * An execution the caller may see. One of a namespace the caller cannot see is answered exactly
 * like a missing one: this API never says that it exists.
 */
export async function visibleExecution(s: Services, id: string, p: Principal, withDefinition = false): Promise<Run> {
  const run = await s.store.findById(id, withDefinition);
  if (!run || !canAccessProject(p, run.repositoryIdentifier)) throw notFound(`Execution ${id} not found`);
  return run;
}

/** Runs as executions, in the order given (their counts, namespaces and trigger types read in one statement). */
export async function presentExecutions(s: Services, runs: Run[]): Promise<Execution[]> {
  const facts = await runFacts(s.orm, runs.map((r) => r.id), { triggerType: triggerTypeSql('r') });
  return runs.map((run) => {
    const f = facts.get(run.id);
    return presentExecution(run, {
      namespace: f?.namespace ?? null, tasksTotal: f?.tasksTotal ?? 0, tasksExecuted: f?.tasksEnded ?? 0,
      triggerType: (f?.derived.triggerType as TriggerType | undefined) ?? 'api',
    }, s.registry);
  });
}

/** `{execution, tasks}`: the answer of a get and of a cancel. */
export async function executionDetail(s: Services, id: string) {
  const run = (await s.store.findById(id, true))!;
  const [[execution], steps, approvals] = await Promise.all([presentExecutions(s, [run]), s.store.steps(run.id), s.approvals.forRuns([run.id])]);
  return { execution, tasks: presentTasks(run, steps, approvals) };
}
