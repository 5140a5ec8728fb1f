import { App } from '@octokit/app';
import { Octokit } from '@octokit/rest';
import type { Logger } from 'pino';
import type { GithubSettings } from '../../config.js';
import { apiFetch } from '../api-fetch.js';

const TIMEOUT_MS = 15_000;
/** How long the installation of a repository is remembered (an app can be reinstalled). */
const INSTALLATION_TTL_MS = 10 * 60_000;

/** Where a message goes: an issue or pull request of a repository the app is installed on. */
export interface Thread {
  repositoryIdentifier: string;
  issueNumber: number;
  /** From the webhook that started the conversation; looked up when absent. */
  installationId?: number;
}

/** GitHub's reactions that Flowgate uses: 👀 received, 🚀 done, 👎 refused or failed, 😕 not understood. */
export type Reaction = 'eyes' | 'rocket' | '-1' | '+1' | 'confused';

/** `owner/repo` → its parts; anything else is not a GitHub repository identifier. */
export function splitRepository(repositoryIdentifier: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repositoryIdentifier);
  if (!m) throw new Error(`"${repositoryIdentifier}" is not a GitHub repository (owner/repo)`);
  return { owner: m[1], repo: m[2] };
}

/** What went wrong in a GitHub call, for messages and logs: the HTTP status and GitHub's own message. */
export function describeGithubError(err: unknown): string {
  const e = err as { status?: number; response?: { data?: { message?: unknown } }; message?: string; name?: string };
  if (typeof e?.status === 'number') {
    const said = typeof e.response?.data?.message === 'string' ? `: ${e.response.data.message.slice(0, 200)}` : '';
    return `HTTP ${e.status}${said}`;
  }
  const cause = (err as { cause?: { code?: string } })?.cause?.code;
  return cause ?? (e?.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000}s` : e?.message ?? String(err));
}

export const githubStatus = (err: unknown): number | undefined => (typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : undefined);

/**
 * The GitHub App: installation tokens from the app id and private key (`@octokit/app`, cached by
 * `@octokit/auth-app` until shortly before they expire), an Octokit per installation against
 * `GITHUB_API_URL`, and the few calls the door makes. `@octokit/rest` has no retry or throttling
 * plugin: callers retry where it is safe (durable steps).
 */
export class GithubClient {
  private static readonly shared = new WeakMap<GithubSettings, GithubClient>();
  private readonly app: App<{ Octokit: typeof Octokit }>;
  private readonly installations = new Map<string, { id: number; until: number }>();

  constructor(settings: GithubSettings, log?: Logger, fetchImpl: typeof fetch = apiFetch) {
    const timed: typeof fetch = (input, init) => fetchImpl(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(TIMEOUT_MS) });
    const quiet = () => {};
    this.app = new App({
      appId: settings.appId,
      privateKey: settings.privateKey,
      Octokit: Octokit.defaults({ baseUrl: settings.apiUrl, userAgent: 'Flowgate', request: { fetch: timed } }),
      log: { debug: quiet, info: quiet, warn: (m: string) => log?.warn(m), error: (m: string) => log?.error(m) },
    });
  }

  /** One client per app configuration: the door and the GitHub Actions dispatcher share its token cache. */
  static for(settings: GithubSettings, log?: Logger): GithubClient {
    let client = GithubClient.shared.get(settings);
    if (!client) GithubClient.shared.set(settings, (client = new GithubClient(settings, log)));
    return client;
  }

  /** The installation of the app on a repository (`GET /repos/{owner}/{repo}/installation`, app-authenticated). */
  async installationOf(repositoryIdentifier: string): Promise<number> {
    const known = this.installations.get(repositoryIdentifier);
    if (known && known.until > Date.now()) return known.id;
    const { owner, repo } = splitRepository(repositoryIdentifier);
    try {
      const { data } = await this.app.octokit.request('GET /repos/{owner}/{repo}/installation', { owner, repo });
      this.installations.set(repositoryIdentifier, { id: data.id, until: Date.now() + INSTALLATION_TTL_MS });
      return data.id;
    } catch (err) {
      // The status is kept: a 404 (the app is not installed there) is final for callers.
      throw Object.assign(new Error(`finding the Flowgate app's installation on ${repositoryIdentifier}: ${describeGithubError(err)}`), { status: githubStatus(err) });
    }
  }

  /** An Octokit acting as the app's installation on the repository. */
  async forRepo(repositoryIdentifier: string, installationId?: number): Promise<Octokit> {
    return this.app.getInstallationOctokit(installationId ?? (await this.installationOf(repositoryIdentifier)));
  }

  async comment(thread: Thread, body: string): Promise<{ id: number; url: string }> {
    return this.act(thread.repositoryIdentifier, `posting a comment on ${thread.repositoryIdentifier}#${thread.issueNumber}`, async (octokit, { owner, repo }) => {
      const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: thread.issueNumber, body });
      return { id: data.id, url: data.html_url };
    }, thread.installationId);
  }

  async createIssue(repositoryIdentifier: string, issue: { title: string; body?: string; labels?: string[] }): Promise<{ number: number; url: string }> {
    return this.act(repositoryIdentifier, `opening an issue on ${repositoryIdentifier}`, async (octokit, { owner, repo }) => {
      const { data } = await octokit.rest.issues.create({ owner, repo, title: issue.title, body: issue.body, labels: issue.labels });
      return { number: data.number, url: data.html_url };
    });
  }

  /**
   * Removes, then adds labels on an issue or pull request and answers the labels it has after.
   * Removing a label the issue does not have is not an error (GitHub answers 404 for it).
   */
  async changeLabels(repositoryIdentifier: string, issueNumber: number, change: { add: string[]; remove: string[] }): Promise<string[]> {
    return this.act(repositoryIdentifier, `changing the labels of ${repositoryIdentifier}#${issueNumber}`, async (octokit, { owner, repo }) => {
      for (const name of change.remove) {
        try {
          await octokit.rest.issues.removeLabel({ owner, repo, issue_number: issueNumber, name });
        } catch (err) {
          if (githubStatus(err) !== 404) throw err;
        }
      }
      const { data } = change.add.length
        ? await octokit.rest.issues.addLabels({ owner, repo, issue_number: issueNumber, labels: change.add })
        : await octokit.rest.issues.listLabelsOnIssue({ owner, repo, issue_number: issueNumber, per_page: 100 });
      return data.map((l) => l.name);
    });
  }

  /** A commit status (the app needs `statuses: write`). */
  async commitStatus(repositoryIdentifier: string, status: { sha: string; state: 'error' | 'failure' | 'pending' | 'success'; context: string; targetUrl?: string; description?: string }): Promise<{ id: number }> {
    return this.act(repositoryIdentifier, `setting the ${status.context} status of ${status.sha.slice(0, 12)} on ${repositoryIdentifier}`, async (octokit, { owner, repo }) => {
      const { data } = await octokit.rest.repos.createCommitStatus({
        owner, repo, sha: status.sha, state: status.state, context: status.context, target_url: status.targetUrl, description: status.description,
      });
      return { id: data.id };
    });
  }

  /**
   * A deployment of `ref` to `environment` (GitHub records it and shows it on the pull request and
   * the environment); `autoMerge` off and no required contexts unless asked: Flowgate's approval is the gate.
   */
  async createDeployment(repositoryIdentifier: string, d: { ref: string; environment: string; description?: string; payload?: Record<string, unknown>; requiredContexts?: string[]; productionEnvironment?: boolean }): Promise<{ id: number; url: string }> {
    return this.act(repositoryIdentifier, `creating a deployment of ${d.ref} to ${d.environment} on ${repositoryIdentifier}`, async (octokit, { owner, repo }) => {
      const { data } = await octokit.rest.repos.createDeployment({
        owner, repo, ref: d.ref, environment: d.environment, description: d.description, payload: d.payload ?? {}, auto_merge: false,
        required_contexts: d.requiredContexts ?? [], production_environment: d.productionEnvironment,
      });
      // 202 is GitHub's answer when it merged the default branch first instead of deploying: not asked for (auto_merge off).
      if (!('id' in data)) throw new Error(`GitHub did not create the deployment: ${(data as { message?: string }).message ?? 'no id returned'}`);
      return { id: data.id, url: data.url };
    });
  }

  /** A status of a deployment (`in_progress`, `success`, `failure`…), with the environment's and the log's links. */
  async deploymentStatus(repositoryIdentifier: string, s: { deployment: number; state: 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success'; description?: string; environmentUrl?: string; logUrl?: string }): Promise<{ id: number }> {
    return this.act(repositoryIdentifier, `setting deployment ${s.deployment} of ${repositoryIdentifier} to ${s.state}`, async (octokit, { owner, repo }) => {
      const { data } = await octokit.rest.repos.createDeploymentStatus({
        owner, repo, deployment_id: s.deployment, state: s.state, description: s.description, environment_url: s.environmentUrl, log_url: s.logUrl,
      });
      return { id: data.id };
    });
  }

  /** A `workflow_dispatch` of a workflow file (or id) on `ref`, the repository's default branch without one. */
  async dispatchWorkflow(repositoryIdentifier: string, workflow: string, ref: string | undefined, inputs: Record<string, string>): Promise<{ ref: string }> {
    return this.act(repositoryIdentifier, `dispatching workflow ${workflow} of ${repositoryIdentifier}`, async (octokit, { owner, repo }) => {
      const on = ref ?? (await octokit.rest.repos.get({ owner, repo })).data.default_branch;
      await octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { owner, repo, workflow_id: workflow, ref: on, inputs });
      return { ref: on };
    });
  }

  /**
   * A call as the app's installation on a repository; a failure names what was done and keeps
   * GitHub's status (`status`), so callers can tell a final refusal from a passing fault.
   */
  private async act<T>(repositoryIdentifier: string, what: string, fn: (octokit: Octokit, where: { owner: string; repo: string }) => Promise<T>, installationId?: number): Promise<T> {
    const where = splitRepository(repositoryIdentifier);
    let octokit: Octokit;
    try {
      octokit = await this.forRepo(repositoryIdentifier, installationId);
    } catch (err) {
      // Already says what failed (the installation lookup) and keeps its status.
      throw Object.assign(new Error(`${what}: ${(err as Error).message}`), { status: githubStatus(err) });
    }
    try {
      return await fn(octokit, where);
    } catch (err) {
      throw Object.assign(new Error(`${what}: ${describeGithubError(err)}`), { status: githubStatus(err) });
    }
  }

  async editComment(thread: Thread, commentId: number, body: string): Promise<void> {
    const { owner, repo } = splitRepository(thread.repositoryIdentifier);
    try {
      const octokit = await this.forRepo(thread.repositoryIdentifier, thread.installationId);
      await octokit.rest.issues.updateComment({ owner, repo, comment_id: commentId, body });
    } catch (err) {
      throw new Error(`editing comment ${commentId} on ${thread.repositoryIdentifier}#${thread.issueNumber}: ${describeGithubError(err)}`);
    }
  }

  /**
   * A person's role on a repository (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`):
   * `admin`, `maintain`, `write`, `triage`, `read` or `none` (GitHub's 404 for someone it does not
   * know as a collaborator). Other failures throw, so callers can refuse.
   */
  async roleOf(repositoryIdentifier: string, login: string, installationId?: number): Promise<string> {
    const { owner, repo } = splitRepository(repositoryIdentifier);
    try {
      const octokit = await this.forRepo(repositoryIdentifier, installationId);
      const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: login });
      // `permission` folds maintain into write and triage into read; `role_name` keeps them apart.
      return String((data as { role_name?: string }).role_name ?? data.permission ?? 'none').toLowerCase();
    } catch (err) {
      if (githubStatus(err) === 404) return 'none';
      throw new Error(`reading ${login}'s permission on ${repositoryIdentifier}: ${describeGithubError(err)}`);
    }
  }

  async react(thread: Thread, commentId: number, content: Reaction): Promise<void> {
    const { owner, repo } = splitRepository(thread.repositoryIdentifier);
    try {
      const octokit = await this.forRepo(thread.repositoryIdentifier, thread.installationId);
      await octokit.rest.reactions.createForIssueComment({ owner, repo, comment_id: commentId, content });
    } catch (err) {
      throw new Error(`reacting ${content} to comment ${commentId} on ${thread.repositoryIdentifier}#${thread.issueNumber}: ${describeGithubError(err)}`);
    }
  }
}
