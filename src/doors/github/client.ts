import { App } from '@octokit/app';
import { Octokit } from '@octokit/rest';
import type { Logger } from 'pino';
import type { GithubSettings } from '../../config.js';

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

  constructor(settings: GithubSettings, log?: Logger, fetchImpl: typeof fetch = fetch) {
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
    const { owner, repo } = splitRepository(thread.repositoryIdentifier);
    try {
      const octokit = await this.forRepo(thread.repositoryIdentifier, thread.installationId);
      const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: thread.issueNumber, body });
      return { id: data.id, url: data.html_url };
    } catch (err) {
      throw new Error(`posting a comment on ${thread.repositoryIdentifier}#${thread.issueNumber}: ${describeGithubError(err)}`);
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
