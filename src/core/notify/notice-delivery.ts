import type { ApprovalService } from '../approvals/approval-service.js';
import { presentApproval } from '../approvals/present-approval.js';
import type { RunStore } from '../runs/run-store.js';
import { noticeRun } from './notice-run.js';
import type { NoticeOutcome } from './notice.js';
import type { Notifier } from './notifier.js';
import { NoticeRefused, type DeliverNotice } from './outbox.js';

/**
 * How each queued notice is told: read as things stand when it is sent (a late retry never
 * shows an older state), through the same notifier every door's thread uses.
 */
export function noticeDelivery(d: { store: RunStore; approvals: ApprovalService; notifier: Notifier }): DeliverNotice {
  const told = (outcome: NoticeOutcome) => {
    // A destination this server cannot reach (no integration configured) will not appear by retrying.
    if (!outcome.delivered && outcome.reason) throw new NoticeRefused(outcome.reason);
    return outcome;
  };
  return async (n) => {
    const run = await d.store.findById(n.runId);
    if (!run) return;
    const about = { runId: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, run: noticeRun(run) };
    if (n.kind === 'run.finished') {
      told(await d.notifier.notify(run.callback, { event: 'run.finished', ...about, status: run.status, result: run.result, error: run.error ?? null }));
      return;
    }
    const a = n.approvalId ? await d.approvals.get(n.approvalId) : null;
    if (!a) return;
    if (n.kind === 'approval.requested') {
      // Posted once: a redelivery after a post that was recorded posts nothing.
      if (a.chat.slack?.messageTs || a.chat.github?.commentId || a.chat.azureDevOps?.commentId) return;
      const outcome = told(await d.notifier.notify(run.callback, { event: 'approval.requested', ...about, approval: presentApproval(a, null) }));
      if (outcome.posted) await d.approvals.recordPosted(a.id, outcome.posted);
      return;
    }
    told(await d.notifier.notify(a.callback, { event: 'approval.updated', ...about, approval: presentApproval(a, null) }));
  };
}
