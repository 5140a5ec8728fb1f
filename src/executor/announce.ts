import type { Logger } from 'pino';
import type { Approval } from '../db/entities/approval.js';
import type { LogLevel } from '../db/entities/log-line.js';
import type { ApprovalService } from '../core/approvals/approval-service.js';
import { presentApproval } from '../core/approvals/present-approval.js';
import type { RunLogs } from '../core/logs/run-logs.js';
import { noticeRun } from '../core/notify/notice-run.js';
import type { Notifier } from '../core/notify/notifier.js';
import type { RunStore } from '../core/runs/run-store.js';
import type { RunStatus } from '../core/status.js';

/**
 * Tells a v2 run's callback destination that it ended, after the end is committed. Best effort
 * for now (no retries across a restart): the outbox is what will make it durable.
 */
export async function announceEnd(d: { store: RunStore; logs: RunLogs; notifier: Notifier; log: Logger }, runId: string, status: RunStatus): Promise<void> {
  try {
    const run = await d.store.findById(runId);
    if (!run?.callback || run.callback.type === 'none') return;
    try {
      await d.notifier.notify(run.callback, {
        event: 'run.finished', runId: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier,
        status, result: run.result, error: run.error ?? null, run: noticeRun(run),
      });
    } catch (err) {
      await d.logs.append(run.id, [{ level: 'warn', source: 'engine', group: 'notify', message: `Result not delivered: ${(err as Error).message}` }]);
    }
  } catch (err) {
    d.log.warn({ runId, err: (err as Error).message }, 'run end not announced');
  }
}

/** Asks the approvers in the run's thread, once per approval (a chat post already made is not repeated). */
export async function announceApproval(
  d: { store: RunStore; notifier: Notifier; approvals: ApprovalService }, runId: string, a: Approval, note: (level: LogLevel, message: string) => void,
): Promise<void> {
  if (a.chat.slack?.messageTs || a.chat.github?.commentId || a.chat.azureDevOps?.commentId) return;
  try {
    const run = await d.store.findById(runId);
    if (!run) return;
    const outcome = await d.notifier.notify(run.callback, {
      event: 'approval.requested', runId, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, approval: presentApproval(a, null), run: noticeRun(run),
    });
    if (outcome.posted) await d.approvals.recordPosted(a.id, outcome.posted);
    if (!outcome.delivered && outcome.reason) note('info', `Approval request not posted: ${outcome.reason}`);
  } catch (err) {
    note('warn', `approval.requested not delivered: ${(err as Error).message}`);
  }
}
