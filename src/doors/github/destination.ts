import type { Services } from '../../container.js';
import type { PresentedApproval } from '../../core/approvals/present-approval.js';
import type { Destination } from '../../core/notify/destination.js';
import type { Notice, NoticeOutcome } from '../../core/notify/notice.js';
import type { Callback } from '../../db/entities/run.js';
import type { GithubClient, Thread } from './client.js';
import { renderApproval, renderRunFinished, renderRunMessage, type ApprovalView, type RunView, type Who } from './render.js';
import { threadOfCallback } from './thread.js';

type NoticeApproval = PresentedApproval;

/**
 * Runs whose callback is a GitHub issue or pull request talk back there: the approval request is a
 * comment (edited after each vote and decision), messages and the result are replies, and the
 * comment that started the run gets 🚀 or 👎 at the end. Errors describe the call and are thrown,
 * so the engine's delivery retries them.
 */
export class GithubDestination implements Destination {
  readonly type = 'github' as const;

  constructor(private readonly s: Services, private readonly gh: GithubClient) {}

  async notify(callback: Callback, notice: Notice): Promise<NoticeOutcome> {
    const thread = threadOfCallback(callback);
    if (!thread) return { delivered: false, reason: 'the github callback names no repositoryIdentifier and issueNumber' };
    switch (notice.event) {
      case 'approval.requested': {
        const approval = notice.approval!;
        const posted = await this.gh.comment(thread, renderApproval(await this.approvalView(approval, notice.taskType, thread)));
        return { delivered: true, posted: { github: { repositoryIdentifier: thread.repositoryIdentifier, issueNumber: thread.issueNumber, commentId: posted.id } } };
      }
      case 'approval.updated': {
        const approval = notice.approval!;
        const body = renderApproval(await this.approvalView(approval, notice.taskType, thread));
        const commentId = Number(approval.context.callback?.github?.commentId);
        if (Number.isInteger(commentId) && commentId > 0) await this.gh.editComment(thread, commentId, body);
        else await this.gh.comment(thread, body);
        return { delivered: true };
      }
      case 'run.message':
        await this.gh.comment(thread, renderRunMessage(notice.taskType ?? 'flow', notice.runId ?? '?', notice.message ?? ''));
        return { delivered: true };
      case 'run.finished':
        return this.finished(thread, notice);
      default:
        return { delivered: false, reason: `${notice.event} is not shown on GitHub` };
    }
  }

  private async finished(thread: Thread & { triggerCommentId?: number }, notice: Notice): Promise<NoticeOutcome> {
    const run = notice.runId ? await this.s.store.findById(notice.runId) : null;
    const status = run?.status ?? notice.status ?? 'finished';
    const view: RunView = {
      id: notice.runId ?? '?', taskType: run?.taskType ?? notice.taskType ?? 'flow', status,
      triggeredBy: await this.who(run?.triggeredBy ?? notice.run?.triggeredBy ?? 'unknown'),
      startedAt: run?.startedAt?.toISOString() ?? null, finishedAt: run?.finishedAt?.toISOString() ?? null,
      error: run?.error ?? notice.error ?? null, result: run?.result ?? notice.result, cicdRunUrl: run?.cicdRunUrl ?? null,
    };
    await this.gh.comment(thread, renderRunFinished(view));
    if (thread.triggerCommentId) await this.gh.react(thread, thread.triggerCommentId, status === 'completed' || status === 'partial' ? 'rocket' : '-1');
    return { delivered: true };
  }

  private async approvalView(a: NoticeApproval, taskType: string | undefined, thread: Thread): Promise<ApprovalView> {
    const repositoryIdentifier = a.repositoryIdentifier ?? thread.repositoryIdentifier;
    const emails = await this.s.approvals.deciders({ ...a, repositoryIdentifier });
    const { callback: _callback, taskType: contextType, ...details } = a.context;
    return {
      id: a.id, runId: a.executionId ?? null, taskType: taskType ?? (typeof contextType === 'string' ? contextType : null), repositoryIdentifier,
      status: a.status, requestedBy: await this.who(a.requestedBy), message: a.message ?? null, details,
      approvers: await Promise.all(emails.map((e) => this.who(e))), approversSource: a.approversSource,
      quorum: a.quorum, approvalsReceived: a.approvalsReceived, allowSelfApproval: a.allowSelfApproval, expiresAt: a.expiresAt, resolvedAt: a.resolvedAt ?? null,
      decisions: await Promise.all(a.decisions.map(async (d) => ({ who: await this.who(d.email), verdict: d.verdict, reason: d.reason ?? null, at: d.at }))),
    };
  }

  /** An email with its linked GitHub login, so the comment mentions (and notifies) the person. */
  private async who(email: string): Promise<Who> {
    return { email, login: (await this.s.identities.githubLoginOf(email)) ?? null };
  }
}
