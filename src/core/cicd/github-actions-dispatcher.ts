import type { Octokit } from '@octokit/rest';
import { DispatchRefused, type CancelJob, type CicdDispatcher, type CicdTarget, type DispatchJob, type DispatchResult } from './dispatcher.js';
import type { PipelineRunFacts } from './pipeline-check.js';

/** The GitHub App, acting as its installation on a repository (the GitHub door's client). */
export interface GithubRepoClient {
  forRepo(repositoryIdentifier: string): Promise<Octokit>;
}

export interface GithubActionsOptions {
  /** FLOWGATE_PUBLIC_URL, passed to the workflow as `flowgateUrl`. */
  flowgateUrl: string;
  /** The repository identifier of a run (cancel jobs carry only the run id). */
  repositoryOf(executionId: string): Promise<string | undefined>;
}

/** The `workflow_dispatch` inputs the workflow declares (see manifests/github-actions/). */
export const WORKFLOW_INPUTS = ['executionId', 'flowgateUrl', 'token', 'payload'] as const;

const statusOf = (err: unknown) => (typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : undefined);

function why(err: unknown): string {
  const response = (err as { response?: { data?: { message?: unknown } } })?.response;
  if (response && statusOf(err) !== undefined) {
    const said = response.data?.message;
    return `HTTP ${statusOf(err)}${typeof said === 'string' ? `: ${said.slice(0, 200)}` : ''}`;
  }
  return (err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.message ?? String(err);
}

/** An error naming what was being done; GitHub's 4xx answers (but 408 and 429) are final. */
function failure(what: string, err: unknown): Error {
  const status = statusOf(err);
  const message = `${what}: ${why(err)}`;
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429 ? new DispatchRefused(message) : new Error(message);
}

function split(repositoryIdentifier: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repositoryIdentifier);
  if (!m) throw new DispatchRefused(`${repositoryIdentifier} is not a GitHub repository (owner/repo)`);
  return { owner: m[1], repo: m[2] };
}

/**
 * The `github-actions` provider: a `workflow_dispatch` of `cicd.workflow` (a workflow file of the
 * project's repository) on `cicd.ref` (default: the repository's default branch), through the
 * GitHub App, with the inputs `executionId`, `flowgateUrl`, `token` (the per-execution token) and
 * `payload` (the run's parameters as JSON). GitHub answers a dispatch without the run it creates:
 * the workflow reports its run id with its first status (`cicdRunId`); cancelling before that finds
 * the run by its name, which the workflow sets to contain the execution id (`run-name`).
 */
export class GithubActionsDispatcher implements CicdDispatcher {
  readonly provider = 'github-actions' as const;

  constructor(private readonly client: GithubRepoClient, private readonly options: GithubActionsOptions) {}

  problem(target: CicdTarget): string | undefined {
    if (!target.workflow) return 'cicd.workflow must name the workflow file to dispatch (e.g. build.yml)';
    return undefined;
  }

  async dispatch(job: DispatchJob, target: CicdTarget): Promise<DispatchResult> {
    const what = `dispatching run ${job.executionId} to workflow ${target.workflow} of ${job.repositoryIdentifier}`;
    if (!target.workflow) throw new DispatchRefused(`${what}: cicd.workflow is not set`);
    const { owner, repo } = split(job.repositoryIdentifier);
    try {
      const octokit = await this.client.forRepo(job.repositoryIdentifier);
      const ref = target.ref ?? (await octokit.rest.repos.get({ owner, repo })).data.default_branch;
      const inputs: Record<(typeof WORKFLOW_INPUTS)[number], string> = {
        executionId: job.executionId, flowgateUrl: this.options.flowgateUrl, token: job.token, payload: JSON.stringify(job.payload),
      };
      const res = await octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { owner, repo, workflow_id: target.workflow, ref, inputs });
      // GitHub may answer with the run it created; the workflow reports it otherwise.
      const run = (res.data ?? {}) as { workflow_run_id?: unknown; html_url?: unknown };
      return {
        ...(typeof run.workflow_run_id === 'number' || typeof run.workflow_run_id === 'string' ? { cicdRunId: String(run.workflow_run_id) } : {}),
        ...(typeof run.html_url === 'string' ? { cicdRunUrl: run.html_url } : {}),
      };
    } catch (err) {
      throw err instanceof DispatchRefused ? err : failure(what, err);
    }
  }

  async cancel(job: CancelJob, target: CicdTarget): Promise<void> {
    const what = `cancelling the GitHub Actions run of execution ${job.executionId}`;
    const repository = await this.repositoryOf(job, what);
    const { owner, repo } = split(repository);
    try {
      const { octokit, runId } = await this.runOf(job, target, repository);
      if (!runId) throw new Error(`${what}: the workflow has not reported its run yet, and no run of ${target.workflow} on ${repository} names the execution`);
      await octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { owner, repo, run_id: Number(runId) });
    } catch (err) {
      // 409: the workflow run already finished; there is nothing left to cancel.
      if (statusOf(err) === 409) return;
      throw statusOf(err) === undefined ? err : failure(`${what} on ${repository}`, err);
    }
  }

  /** The Actions run of an execution, re-read through the API (by its id, else by its name). */
  async pipelineRun(job: CancelJob, target: CicdTarget): Promise<PipelineRunFacts | null> {
    const what = `reading the GitHub Actions run of execution ${job.executionId}`;
    const repository = await this.repositoryOf(job, what);
    const { owner, repo } = split(repository);
    try {
      const { octokit, runId } = await this.runOf(job, target, repository);
      if (!runId || !/^\d{1,20}$/.test(runId)) return null;
      const { data } = await octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', { owner, repo, run_id: Number(runId) });
      return {
        id: String(data.id), workflowPath: data.path ?? null, workflowId: data.workflow_id === undefined ? null : String(data.workflow_id),
        event: data.event ?? null, createdAt: data.created_at ? new Date(data.created_at) : null,
        status: data.status ?? null, conclusion: data.conclusion ?? null, url: data.html_url ?? null,
      };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw statusOf(err) === undefined ? err : new Error(`${what} on ${repository}: ${why(err)}`);
    }
  }

  private async repositoryOf(job: CancelJob, what: string): Promise<string> {
    const repository = await this.options.repositoryOf(job.executionId);
    if (!repository) throw new Error(`${what}: the execution is unknown`);
    return repository;
  }

  /** The Actions run of an execution: the id it reported, else the run whose name carries the execution id. */
  private async runOf(job: CancelJob, target: CicdTarget, repository: string): Promise<{ octokit: Octokit; runId: string | undefined }> {
    const { owner, repo } = split(repository);
    const octokit = await this.client.forRepo(repository);
    return { octokit, runId: job.cicdRunId ?? (await this.findRun(octokit, owner, repo, target.workflow, job.executionId)) };
  }

  private async findRun(octokit: Octokit, owner: string, repo: string, workflow: string | undefined, executionId: string): Promise<string | undefined> {
    if (!workflow) return undefined;
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { owner, repo, workflow_id: workflow, event: 'workflow_dispatch', per_page: 50 });
    const run = data.workflow_runs.find((r) => (r.display_title ?? r.name ?? '').includes(executionId));
    return run ? String(run.id) : undefined;
  }
}
