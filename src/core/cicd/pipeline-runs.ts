import { Run } from '../../db/entities/run.js';
import { SYSTEM } from '../audit/audit-log.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import type { RunStore } from '../runs/run-store.js';
import type { CicdService } from './cicd-service.js';
import type { CicdTarget } from './dispatcher.js';

/** A `cicd.run` step's pipeline: a child run in cicd mode of the step's run. */
export interface PipelineRunInput {
  /** Derived from the parent run, the step and its attempt: a step run again after a crash finds its child. */
  id: string;
  parent: { id: string; taskType: string; repositoryIdentifier: string; triggeredBy: string };
  requestedBy: string;
  stepRef: string;
  target: CicdTarget;
  /** What the pipeline gets as the run's `payload` (the step's `inputs`). */
  payload: Record<string, unknown>;
}

export type PipelineStart =
  | { refused: string }
  /** `notDispatchedYet`: its dispatch could not be started now; the orphan sweep starts it. */
  | { run: Run; notDispatchedYet?: string };

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Pipelines started by `cicd.run` steps. Each is a cicd-mode child run handed to the same
 * dispatchers, with the same per-execution token and status URL as a cicd flow type's run, so its
 * reports, their checks, token expiry and cancel work as they do for those; the step waits on it
 * as `flow.subflow` waits on its child.
 */
export class PipelineRuns {
  constructor(private readonly d: { store: RunStore; cicd: CicdService }) {}

  /** Records the child run (once per id) and starts its dispatch (once per run: the dispatch workflow's id is the run's). */
  async start(input: PipelineRunInput): Promise<PipelineStart> {
    let run = await this.d.store.findById(input.id);
    if (!run) {
      const problem = await this.d.cicd.dispatchProblem(input.parent.repositoryIdentifier, input.target);
      if (problem) return { refused: `cannot dispatch to ${input.target.provider}: ${problem}` };
      const child = childRun(input);
      // False when an earlier claim of the same step recorded it meanwhile: read back below either way.
      await this.d.store.insertStarted(child, {
        level: 'info', source: 'engine', group: 'run', message: `Run of ${child.taskType} started by parent run ${input.parent.id} (step ${input.stepRef}, cicd.run)`,
      }, { actor: SYSTEM, action: 'run.started', details: { taskType: child.taskType, repositoryIdentifier: child.repositoryIdentifier, parentRunId: input.parent.id, provider: input.target.provider } });
      run = await this.d.store.findById(input.id);
      if (!run) throw new Error(`pipeline run ${input.id} was not recorded`);
    }
    if (run.status !== 'queued') return { run };
    try {
      await this.d.cicd.start(run);
      return { run };
    } catch (err) {
      return { run, notDispatchedYet: messageOf(err) };
    }
  }

  /** The pipeline run as it stands (its ids, result and error). */
  get(id: string): Promise<Run | null> {
    return this.d.store.findById(id);
  }

  /** Cancels the pipeline run and asks its pipeline to cancel (a failure to ask is logged on it); false when it had ended. */
  async cancel(id: string, reason: string): Promise<boolean> {
    return (await this.d.cicd.cancelRuns([id], reason, SYSTEM)).includes(id);
  }
}

/** The child run: a cicd flow type made of the step's target, as a manifest's `cicd:` block would make it. */
function childRun(input: PipelineRunInput): Run {
  const taskType = `${input.parent.taskType}.${input.stepRef}`;
  const definition: FlowDefinition = {
    id: taskType, name: `${input.parent.taskType}: ${input.stepRef}`, description: `The pipeline of step ${input.stepRef} (cicd.run)`,
    category: 'other', executionMode: 'cicd', parameters: [], steps: [], schedules: [], cicd: input.target,
  };
  return Object.assign(new Run(), {
    id: input.id, engineRunId: `run-${input.id}`, taskType, requestedTaskType: null, flowPath: taskType, category: definition.category,
    executionMode: 'cicd', repositoryIdentifier: input.parent.repositoryIdentifier, status: 'queued', payload: input.payload, result: {}, definition,
    triggeredBy: input.parent.triggeredBy, requestedBy: input.requestedBy, workItemRef: null,
    // Its end is the step's to tell: the run's thread hears of the parent, not of each pipeline.
    callback: null,
    parentRunId: input.parent.id, rerunOfExecutionId: null, rerunType: null, schedulePath: null, tags: {}, trigger: null,
    maxParallelSteps: 0, expiresAt: null, logSeq: 0, createdAt: new Date(), updatedAt: new Date(),
  } satisfies Partial<Run>);
}
