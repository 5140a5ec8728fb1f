import { EntitySchema } from '@mikro-orm/core';
import type { StepStatus } from '../../core/status.js';

export class StepRun {
  id!: string;
  runId!: string;
  stepRef!: string;
  kind!: string;
  status!: StepStatus;
  attempt = 0;
  depsCompleted = 0;
  depsRequired = 0;
  output?: unknown;
  error?: string | null;
  /** What a waiting step waits for, e.g. `event:deploy-finished`. */
  waitingFor?: string | null;
  /** The workflow the step runs in (its own, or its run's when it runs alone): where its messages go. */
  workflowId?: string | null;
  /** Who skipped or force-completed the step through run control, or null. */
  overriddenBy?: string | null;
  startedAt?: Date | null;
  finishedAt?: Date | null;
  /** One entry per attempt, oldest first (written by the engine's retry loop). */
  attempts: StepAttempt[] = [];
}

export interface StepAttempt {
  attempt: number;
  status: 'running' | StepStatus;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export const StepRunSchema = new EntitySchema<StepRun>({
  class: StepRun,
  tableName: 'step_runs',
  uniques: [{ properties: ['runId', 'stepRef'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    runId: { type: 'uuid' },
    stepRef: { type: 'text' },
    kind: { type: 'text' },
    status: { type: 'text' },
    attempt: { type: 'integer' },
    depsCompleted: { type: 'integer' },
    depsRequired: { type: 'integer' },
    output: { type: 'json', nullable: true },
    error: { type: 'text', nullable: true },
    waitingFor: { type: 'text', nullable: true },
    workflowId: { type: 'text', nullable: true },
    overriddenBy: { type: 'text', nullable: true },
    startedAt: { type: 'datetime', nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    attempts: { type: 'json' },
  },
});
