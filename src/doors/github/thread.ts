import type { Services } from '../../container.js';
import type { Person } from '../../core/approvals/approval-rules.js';
import { listRuns } from '../../core/runs/run-query.js';
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

/** The person behind a GitHub login, through the identity directory. */
export async function personOf(s: Services, login: string): Promise<Person | null> {
  const email = await s.identities.emailByGithub(login);
  return email ? { email, name: login } : null;
}

/** The run of a thread: the latest started from this issue or pull request, else the one its approval belongs to. */
export async function runOfThread(s: Services, e: Conversation): Promise<Run | null> {
  const { runs } = await listRuns(s.orm, {
    repositoryIdentifier: e.repositoryIdentifier, workItemKey: String(e.issueNumber), workItemType: workItemOf(e).type, includeScheduled: true, limit: 1, page: 1,
  });
  if (runs[0]) return runs[0];
  const approval = await s.approvals.byChat('github', { repositoryIdentifier: e.repositoryIdentifier, issueNumber: e.issueNumber });
  return approval?.runId ? s.store.findById(approval.runId) : null;
}
