import type { ApprovalService } from '../approvals/approval-service.js';
import { presentApproval } from '../approvals/present-approval.js';
import type { RunStore } from '../runs/run-store.js';
import { noticeRun } from './notice-run.js';
import type { NoticeOutcome } from './notice.js';
import type { Notifier } from './notifier.js';
import { NoticeRefused, type DeliverNotice, type QueuedNotice } from './outbox.js';
import { approvalJsonSql } from '../approvals/approval-service.js';
import { RUN_COLUMNS } from '../runs/run-store.js';
import { rowTo } from '../../db/sql.js';
import { RunSchema, type Run } from '../../db/entities/run.js';
import { ApprovalSchema, type Approval } from '../../db/entities/approval.js';

/**
 * What a notice's delivery reads, in the statement that leases it (`OutboxOptions.reads`): its run
 * and its approval, as they stand when it is sent.
 */
export const noticeReads = (n: string) =>
  `(select to_jsonb(x) from (select ${RUN_COLUMNS} from runs where id = ${n}.run_id) x) as run,
   ${approvalJsonSql(`${n}.approval_id`)} as approval`;

/** A row read with the notice (`to_jsonb`), else `read()`: the outbox read nothing with it. */
function readWith<T extends object>(n: QueuedNotice, name: string, schema: Parameters<typeof rowTo>[0], read: () => Promise<T | null>): Promise<T | null> {
  if (!n.rows || !(name in n.rows)) return read();
  const row = n.rows[name];
  return Promise.resolve(row ? rowTo<T>(schema, row as Record<string, unknown>) : null);
}

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
    const run = await readWith<Run>(n, 'run', RunSchema, () => d.store.findById(n.runId));
    if (!run) return;
    const about = { runId: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, run: noticeRun(run) };
    if (n.kind === 'run.finished') {
      told(await d.notifier.notify(run.callback, { event: 'run.finished', ...about, status: run.status, result: run.result, error: run.error ?? null }));
      return;
    }
    const approvalId = n.approvalId;
    const a = approvalId ? await readWith<Approval>(n, 'approval', ApprovalSchema, () => d.approvals.get(approvalId)) : null;
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
