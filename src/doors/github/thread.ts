import type { Services } from '../../container.js';
import type { Person } from '../../core/approvals/approval-rules.js';
import type { ThreadRef } from '../../core/approvals/thread-lookup.js';
import type { Callback, Run, WorkItemRef } from '../../db/entities/run.js';
import type { Thread } from './client.js';
import type { CommentEvent, IssueRequest } from './events.js';

type Conversation = Pick<CommentEvent | IssueRequest, 'repositoryIdentifier' | 'issueNumber' | 'isPullRequest' | 'issueUrl' | 'installationId'>;

export const threadOf = (e: Conversation): Thread => ({
  repositoryIdentifier: e.repositoryIdentifier, issueNumber: e.issueNumber, ...(e.installationId ? { installationId: e.installationId } : {}),
});

/** Where a run started from an issue or pull request talks back; `triggerCommentId` gets 🚀 or 👎 at the end. */
export const callbackOf = (e: Conversation, triggerCommentId?: number): Callback => ({
  type: 'github', github: { ...threadOf(e), ...(triggerCommentId ? { triggerCommentId } : {}) },
});

export const workItemOf = (e: Conversation): WorkItemRef => ({
  type: e.isPullRequest ? 'github-pr' : 'github-issue', key: String(e.issueNumber), repository: e.repositoryIdentifier, ...(e.issueUrl ? { url: e.issueUrl } : {}),
});

/** The thread of a `github` callback, or null when it names none. */
export function threadOfCallback(cb: Callback | null | undefined): (Thread & { triggerCommentId?: number }) | null {
  const g = cb?.github;
  const issueNumber = Number(g?.issueNumber);
  if (!g || typeof g.repositoryIdentifier !== 'string' || !Number.isInteger(issueNumber) || issueNumber <= 0) return null;
  const installationId = Number(g.installationId);
  const triggerCommentId = Number(g.triggerCommentId);
  return {
    repositoryIdentifier: g.repositoryIdentifier, issueNumber,
    ...(Number.isInteger(installationId) && installationId > 0 ? { installationId } : {}),
    ...(Number.isInteger(triggerCommentId) && triggerCommentId > 0 ? { triggerCommentId } : {}),
  };
}

/** The person behind a GitHub user, through the identity directory: by their numeric id, not the login. */
export async function personOf(s: Services, sender: { login: string; userId: number }): Promise<Person | null> {
  const email = await s.identities.emailByGithubUser(sender.userId, sender.login);
  return email ? { email, name: sender.login, as: `GitHub @${sender.login} (user id ${sender.userId}), linked in Flowgate` } : null;
}

/** The issue or pull request as the core looks threads up (approvals and runs of this repository's project only). */
export const threadRefOf = (e: Pick<Conversation, 'repositoryIdentifier' | 'issueNumber'>): ThreadRef => ({ kind: 'github', repositoryIdentifier: e.repositoryIdentifier, issueNumber: e.issueNumber });

/** The run of a thread: the latest started from this issue or pull request, else the one its approval belongs to. */
export async function runOfThread(s: Services, e: Conversation): Promise<Run | null> {
  return (await s.approvals.runsOfThread(threadRefOf(e)))[0] ?? null;
}
