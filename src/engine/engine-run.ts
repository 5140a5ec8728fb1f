import type { Callback } from '../db/entities/run.js';
import type { FlowDefinition } from '../core/registry/manifest-schema.js';

/** The part of a run the workflows carry: checkpointed once when the run starts. */
export interface EngineRun {
  id: string;
  engineRunId: string;
  taskType: string;
  repositoryIdentifier: string;
  triggeredBy: string;
  /** The requester its approvals see (a schedule's author for a scheduled run). */
  requestedBy: string;
  parentRunId: string | null;
  payload: Record<string, unknown>;
  callback: Callback | null;
  definition: FlowDefinition;
}
