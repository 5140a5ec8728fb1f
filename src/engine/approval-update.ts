import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import { presentApproval } from '../core/approvals/present-approval.js';
import type { ApprovalService } from '../core/approvals/approval-service.js';
import { noticeRun } from '../core/notify/notice-run.js';
import type { Notifier } from '../core/notify/notifier.js';
import type { RunStore } from '../core/runs/run-store.js';

interface UpdateDeps { approvals: ApprovalService; notifier: Notifier; store: RunStore }
let deps: UpdateDeps | undefined;
export function setApprovalUpdateDeps(d: UpdateDeps): void { deps = d; }

/**
 * Tells an approval's thread that it changed (a vote, a decision, expiry, cancellation), so a
 * chat message can show the outcome at once. Durable and retried; the notice carries the
 * approval as it is when sent, so a late retry never shows an older state.
 */
async function approvalUpdateImpl(approvalId: string): Promise<void> {
  await durableStep(() => sendApprovalUpdate(approvalId), { name: 'notify', retriesAllowed: true, maxAttempts: 5, intervalSeconds: 1, backoffRate: 2 });
}

/** Sends the approval's current state to its thread, once. */
export async function sendApprovalUpdate(approvalId: string): Promise<void> {
  const d = deps!;
  const a = (await d.approvals.get(approvalId))!;
  const run = a.runId ? await d.store.findById(a.runId) : null;
  await d.notifier.notify(a.callback, { event: 'approval.updated', runId: a.runId ?? null, taskType: run?.taskType, repositoryIdentifier: a.repositoryIdentifier, approval: presentApproval(a, null), run: run ? noticeRun(run) : undefined });
}

export const approvalUpdate = DBOS.registerWorkflow(approvalUpdateImpl, { name: 'flowgate.approval-update' });
