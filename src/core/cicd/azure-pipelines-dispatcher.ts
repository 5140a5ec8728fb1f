import * as azdev from 'azure-devops-node-api';
import type { IBuildApi } from 'azure-devops-node-api/BuildApi.js';
import type { IPipelinesApi } from 'azure-devops-node-api/PipelinesApi.js';
import { BuildStatus } from 'azure-devops-node-api/interfaces/BuildInterfaces.js';
import type { RunPipelineParameters } from 'azure-devops-node-api/interfaces/PipelinesInterfaces.js';
import { redact } from '../secrets.js';
import { DispatchRefused, type CancelJob, type CicdDispatcher, type CicdTarget, type DispatchJob, type DispatchResult } from './dispatcher.js';

export interface AzurePipelinesOptions {
  /** AZURE_DEVOPS_ORG_URL: the organisation every `org/project/repo` project of this provider lives in. */
  orgUrl: string;
  /** AZURE_DEVOPS_TOKEN: a PAT allowed to queue and cancel builds. */
  token: string;
  /** FLOWGATE_PUBLIC_URL, passed to the pipeline as `flowgateUrl`. */
  flowgateUrl: string;
  /** The repository identifier of a run (cancel jobs carry only the run id). */
  repositoryOf(executionId: string): Promise<string | undefined>;
}

/** Template parameters the pipeline declares (see manifests/azure-pipelines/), and the secret variable with the token. */
export const PIPELINE_PARAMETERS = { executionId: 'flowgateExecutionId', url: 'flowgateUrl', payload: 'flowgatePayload' } as const;
export const TOKEN_VARIABLE = 'FLOWGATE_TOKEN';

const pipelineIdOf = (target: CicdTarget): number | undefined => {
  const n = typeof target.pipeline === 'number' ? target.pipeline : /^\d+$/.test(String(target.pipeline ?? '').trim()) ? Number(target.pipeline) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

/** `https://dev.azure.com/acme` → `acme` (the `org` of `org/project/repo`). */
const organizationOf = (orgUrl: string) => {
  const url = new URL(orgUrl);
  return decodeURIComponent(url.pathname.split('/').filter(Boolean).at(-1) ?? url.hostname.split('.')[0]);
};

/**
 * The `azure-pipelines` provider: queues a run of `cicd.pipeline` (the numeric pipeline id) in
 * the Azure DevOps project of the run's `org/project/repo`, through the Pipelines API, with the
 * template parameters `flowgateExecutionId`, `flowgateUrl`, `flowgatePayload` (JSON) and the
 * per-execution token as the secret variable `FLOWGATE_TOKEN`; `cicd.ref` picks the branch.
 * The pipeline run id is the build id: cancelling sets the build's status to cancelling.
 */
export class AzurePipelinesDispatcher implements CicdDispatcher {
  readonly provider = 'azure-pipelines' as const;
  private readonly web: azdev.WebApi;
  private readonly org: string;
  private pipelines?: Promise<IPipelinesApi>;
  private builds?: Promise<IBuildApi>;

  constructor(private readonly options: AzurePipelinesOptions) {
    this.web = new azdev.WebApi(options.orgUrl, azdev.getPersonalAccessTokenHandler(options.token), { socketTimeout: 15_000 });
    this.org = organizationOf(options.orgUrl);
  }

  problem(target: CicdTarget): string | undefined {
    if (pipelineIdOf(target) === undefined) return 'cicd.pipeline must be the numeric id of the Azure Pipelines pipeline';
    return undefined;
  }

  async dispatch(job: DispatchJob, target: CicdTarget, credentials: Record<string, string>): Promise<DispatchResult> {
    const pipelineId = pipelineIdOf(target);
    if (pipelineId === undefined) throw new DispatchRefused('cicd.pipeline must be the numeric id of the Azure Pipelines pipeline');
    const project = this.projectOf(job.repositoryIdentifier);
    const parameters: RunPipelineParameters = {
      templateParameters: {
        [PIPELINE_PARAMETERS.executionId]: job.executionId,
        [PIPELINE_PARAMETERS.url]: this.options.flowgateUrl.replace(/\/+$/, ''),
        [PIPELINE_PARAMETERS.payload]: JSON.stringify(job.payload),
      },
      variables: { [TOKEN_VARIABLE]: { value: job.token, isSecret: true } },
      ...(target.ref ? { resources: { repositories: { self: { refName: target.ref.startsWith('refs/') ? target.ref : `refs/heads/${target.ref}` } } } } : {}),
    };
    const run = await this.call(`queueing pipeline ${pipelineId} for run ${job.executionId}`, credentials, async () => {
      this.pipelines ??= this.web.getPipelinesApi().catch((err) => { this.pipelines = undefined; throw err; });
      return (await this.pipelines).runPipeline(parameters, project, pipelineId);
    });
    // The client library answers a 404 with null: the pipeline does not exist (or the token cannot see it).
    if (!run || typeof run.id !== 'number') throw new DispatchRefused(`queueing pipeline ${pipelineId} for run ${job.executionId}: pipeline ${pipelineId} not found in project ${project} (HTTP 404)`);
    const web = (run as { _links?: { web?: { href?: string } } })._links?.web?.href;
    return { cicdRunId: String(run.id), ...(web ?? run.url ? { cicdRunUrl: web ?? run.url } : {}) };
  }

  async cancel(job: CancelJob, _target: CicdTarget, credentials: Record<string, string>): Promise<void> {
    if (!job.cicdRunId || !/^\d+$/.test(job.cicdRunId)) throw new Error(`cancelling run ${job.executionId}: its pipeline run id is not known`);
    const repositoryIdentifier = await this.options.repositoryOf(job.executionId);
    if (!repositoryIdentifier) throw new Error(`cancelling run ${job.executionId}: the run is unknown`);
    const project = this.projectOf(repositoryIdentifier);
    const build = await this.call(`cancelling pipeline run ${job.cicdRunId} of run ${job.executionId}`, credentials, async () => {
      this.builds ??= this.web.getBuildApi().catch((err) => { this.builds = undefined; throw err; });
      return (await this.builds).updateBuild({ status: BuildStatus.Cancelling }, project, Number(job.cicdRunId));
    });
    if (!build) throw new Error(`cancelling pipeline run ${job.cicdRunId} of run ${job.executionId}: not found in project ${project} (HTTP 404)`);
  }

  /** The Azure DevOps project of `org/project/repo`, which must be in this server's organisation. */
  private projectOf(repositoryIdentifier: string): string {
    const parts = repositoryIdentifier.split('/');
    if (parts.length !== 3 || !parts.every(Boolean)) throw new DispatchRefused(`project ${repositoryIdentifier} is not an Azure DevOps org/project/repo`);
    if (parts[0].toLowerCase() !== this.org.toLowerCase())
      throw new DispatchRefused(`project ${repositoryIdentifier} is in organisation ${parts[0]}, but AZURE_DEVOPS_ORG_URL is organisation ${this.org}`);
    return parts[1];
  }

  /** Errors name what was done and the HTTP status, never a credential; a 4xx (but 408/429) is final. */
  private async call<T>(what: string, credentials: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DispatchRefused) throw err;
      const e = err as { statusCode?: number; message?: string; code?: string };
      const status = e.statusCode;
      const why = redact(redact(`${what}: ${status ? `HTTP ${status}: ` : ''}${e.message ?? e.code ?? String(err)}`, credentials), { token: this.options.token });
      const final = status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
      throw final ? new DispatchRefused(why) : new Error(why);
    }
  }
}
