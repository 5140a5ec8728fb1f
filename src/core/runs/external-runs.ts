import { Run } from '../../db/entities/run.js';
import { AppError, badRequest } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import type { ProjectService } from '../projects/projects.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import type { FlowRegistry } from '../registry/registry.js';
import type { RunStore } from './run-store.js';

/** Engine run ids Flowgate gives its own runs (`run-<id>`) and external runs without one (`ext-<id>`). */
const RESERVED_ENGINE_ID = /^(run|ext)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const taken = (engineRunId: string, why: string) =>
  new AppError('conflict', `Engine run id ${engineRunId} cannot be registered: ${why}`, [{ field: 'hatchetRunId', message: why, location: 'body' }]);

export interface ExternalRunInput {
  /** A preset run id (the flow-runs API derives it from the id the recorder chose); new by default. */
  id?: string;
  engineRunId?: string | null;
  taskType: string;
  flowPath: string;
  repositoryIdentifier: string;
  category?: string | null;
  payload?: Record<string, unknown>;
  triggeredBy: string;
  parentRunId?: string | null;
  schedulePath?: string | null;
  rerunOfExecutionId?: string | null;
  rerunPayload?: Record<string, unknown> | null;
}

/**
 * Runs of flows executed by an engine elsewhere (children and scheduled flows registering
 * themselves): recorded so every API sees them, never executed by Flowgate.
 */
export class ExternalRuns {
  constructor(private readonly store: RunStore, private readonly registry: FlowRegistry, private readonly projects: ProjectService, private readonly audit: AuditLog) {}

  async register(input: ExternalRunInput, actor: Actor): Promise<Run> {
    if (!(await this.projects.find(input.repositoryIdentifier)))
      throw badRequest(`Unknown project ${input.repositoryIdentifier}`, [{ field: 'repositoryIdentifier', message: 'not registered', location: 'body' }]);
    const def: FlowDefinition = this.registry.find(input.taskType) ?? {
      id: input.taskType, name: input.taskType, description: '', category: 'other', executionMode: 'flow', parameters: [], steps: [], schedules: [],
    };
    // An external engine's id must never make another run's lookups ambiguous (or squat an id a door will use).
    if (input.engineRunId) {
      if (RESERVED_ENGINE_ID.test(input.engineRunId)) throw taken(input.engineRunId, 'this form is reserved for Flowgate\'s own runs');
      if (await this.store.idTaken(input.engineRunId)) throw taken(input.engineRunId, 'already the id or engine run id of a run');
    }
    const id = input.id ?? newId();
    const run = Object.assign(new Run(), {
      id,
      engineRunId: input.engineRunId ?? `ext-${id}`,
      taskType: input.taskType,
      requestedTaskType: null,
      flowPath: input.flowPath,
      category: input.category ?? def.category,
      executionMode: 'flow',
      repositoryIdentifier: input.repositoryIdentifier,
      status: 'running',
      payload: input.payload ?? {},
      result: {},
      definition: def,
      triggeredBy: input.triggeredBy,
      parentRunId: input.parentRunId ?? null,
      rerunOfExecutionId: input.rerunOfExecutionId ?? null,
      rerunType: input.rerunOfExecutionId ? 'rerun' : null,
      schedulePath: input.schedulePath ?? null,
      engine: 'external',
      rerunPayload: input.rerunPayload ?? null,
      createdAt: new Date(),
      startedAt: new Date(),
      updatedAt: new Date(),
    } satisfies Partial<Run>);
    try {
      await this.store.insert(run);
    } catch (err) {
      // Registered at the same moment by someone else.
      if ((err as { code?: string }).code === '23505') throw taken(run.engineRunId, 'already the id or engine run id of a run');
      throw err;
    }
    await this.audit.record(actor, 'run.registered', 'run', run.id, { taskType: run.taskType, parentRunId: run.parentRunId, schedulePath: run.schedulePath });
    return run;
  }
}
