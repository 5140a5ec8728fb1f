import type { z } from 'zod';
import type { cicdTargetSchema } from '../registry/manifest-schema.js';
import type { PipelineRunFacts } from './pipeline-check.js';

/** Where a cicd-mode flow type runs: the manifest's `cicd:` block. */
export type CicdTarget = z.infer<typeof cicdTargetSchema>;
export type CicdProvider = CicdTarget['provider'];

/** What a pipeline is told when a run is handed to it. `token` is a secret: never store or log a job. */
export interface DispatchJob {
  executionId: string;
  flowType: string;
  repositoryIdentifier: string;
  payload: Record<string, unknown>;
  /** Where the pipeline reports (`POST`, with `token` as bearer). */
  statusUrl: string;
  /** The per-execution token, valid for this run only. */
  token: string;
}

/** The provider's own handle on the pipeline run, when it gives one. */
export interface DispatchResult {
  cicdRunId?: string;
  cicdRunUrl?: string;
}

export interface CancelJob {
  executionId: string;
  cicdRunId: string | null;
}

/**
 * One CI/CD provider (webhook, GitHub Actions, Azure Pipelines). Errors thrown by `dispatch` and
 * `cancel` describe what was being done and never contain credentials; a `DispatchRefused` error
 * means retrying will not help.
 */
export interface CicdDispatcher {
  readonly provider: CicdProvider;
  /** Why a run of this target cannot be dispatched from this server right now; checked when a run is requested. */
  problem(target: CicdTarget, credentials: Record<string, string>): string | undefined;
  dispatch(job: DispatchJob, target: CicdTarget, credentials: Record<string, string>): Promise<DispatchResult>;
  cancel(job: CancelJob, target: CicdTarget, credentials: Record<string, string>): Promise<void>;
  /**
   * What the provider's own API says about the execution's pipeline run (by its id, else found by
   * the execution id); null when there is no such run. Providers whose token can be read by others
   * (GitHub Actions inputs) have every report checked against it.
   */
  pipelineRun?(job: CancelJob, target: CicdTarget): Promise<PipelineRunFacts | null>;
}

/** The provider answered in a way that retrying will not change (e.g. HTTP 4xx). */
export class DispatchRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DispatchRefused';
  }
}

/** Chooses the dispatcher by `target.provider`; a provider without one is not configured on this server. */
export class CicdDispatchers {
  private readonly byProvider: Map<CicdProvider, CicdDispatcher>;
  constructor(dispatchers: CicdDispatcher[]) {
    this.byProvider = new Map(dispatchers.map((d) => [d.provider, d]));
  }

  for(provider: CicdProvider): CicdDispatcher | undefined {
    return this.byProvider.get(provider);
  }
}
