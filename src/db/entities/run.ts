import { EntitySchema } from '@mikro-orm/core';
import type { RunStatus } from '../../core/status.js';
import type { FlowDefinition } from '../../core/registry/manifest-schema.js';

export type ExecutionMode = 'flow' | 'cicd';

export interface WorkItemRef {
  type: 'github-issue' | 'github-pr' | 'github-commit' | 'ado-workitem' | 'ado-commit';
  key: string;
  url?: string;
  repository?: string;
  organization?: string;
  project?: string;
}

/** Where a run came from and where its messages go back to. */
export interface Callback {
  type: 'github' | 'slack' | 'webhook' | 'azure-devops' | 'none';
  github?: Record<string, unknown>;
  slack?: Record<string, unknown>;
  webhook?: Record<string, unknown>;
  azureDevOps?: Record<string, unknown>;
}

/** A run of a flow type (the sfp API calls it a TaskExecution). */
export class Run {
  id!: string;
  engineRunId!: string;
  taskType!: string;
  /** The type asked for when a project override routed the run to another one. */
  requestedTaskType?: string | null;
  flowPath!: string;
  category!: string;
  executionMode!: ExecutionMode;
  repositoryIdentifier!: string;
  status!: RunStatus;
  payload!: Record<string, unknown>;
  result: Record<string, unknown> = {};
  /** The flow definition as it was when the run started: recovery replays the same graph. */
  definition!: FlowDefinition;
  triggeredBy!: string;
  /** Who the run acts for when that is not `triggeredBy` (a schedule's author); approvals treat them as the requester. */
  requestedBy?: string | null;
  workItemRef?: WorkItemRef | null;
  callback?: Callback | null;
  parentRunId?: string | null;
  rerunOfExecutionId?: string | null;
  rerunType?: 'rerun' | 'restart' | 'retry' | null;
  schedulePath?: string | null;
  cicdRunId?: string | null;
  cicdRunUrl?: string | null;
  error?: string | null;
  /** `external`: registered by an engine elsewhere; Flowgate records it but does not execute it. */
  engine: 'flowgate' | 'external' = 'flowgate';
  /** For external children: the payload a rerun should use. */
  rerunPayload?: Record<string, unknown> | null;
  /** Labels given at start (`{key: value}`): shown and filtered on by the workflow-runs API. */
  tags: Record<string, string> = {};
  /** The flow's `maxParallelSteps` when the run started (0 = no cap). */
  maxParallelSteps = 0;
  /** `v2` when the set-based executor carries the run; null for the previous engine's runs. */
  engineVersion?: 'v2' | null;
  /** When the run times out (its flow's `timeout`), or null. */
  expiresAt?: Date | null;
  /** What started it, as its steps read it (`trigger.type`, `trigger.body`…), when a trigger or the execute route started it. */
  trigger?: Record<string, unknown> | null;
  logSeq = 0;
  createdAt: Date = new Date();
  startedAt?: Date | null;
  finishedAt?: Date | null;
  updatedAt: Date = new Date();
}

export const RunSchema = new EntitySchema<Run>({
  class: Run,
  tableName: 'runs',
  properties: {
    id: { type: 'uuid', primary: true },
    engineRunId: { type: 'text', unique: true },
    taskType: { type: 'text' },
    requestedTaskType: { type: 'text', nullable: true },
    flowPath: { type: 'text' },
    category: { type: 'text' },
    executionMode: { type: 'text' },
    repositoryIdentifier: { type: 'text' },
    status: { type: 'text' },
    payload: { type: 'json' },
    result: { type: 'json' },
    definition: { type: 'json', lazy: true },
    triggeredBy: { type: 'text' },
    requestedBy: { type: 'text', nullable: true },
    workItemRef: { type: 'json', nullable: true },
    callback: { type: 'json', nullable: true },
    parentRunId: { type: 'uuid', nullable: true },
    rerunOfExecutionId: { type: 'uuid', nullable: true },
    rerunType: { type: 'text', nullable: true },
    schedulePath: { type: 'text', nullable: true },
    cicdRunId: { type: 'text', nullable: true },
    cicdRunUrl: { type: 'text', nullable: true },
    error: { type: 'text', nullable: true },
    engine: { type: 'text' },
    rerunPayload: { type: 'json', nullable: true },
    tags: { type: 'json' },
    maxParallelSteps: { type: 'integer' },
    engineVersion: { type: 'text', nullable: true },
    trigger: { type: 'json', nullable: true },
    expiresAt: { type: 'datetime', nullable: true },
    logSeq: { type: 'integer' },
    createdAt: { type: 'datetime' },
    startedAt: { type: 'datetime', nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
