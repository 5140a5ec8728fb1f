import type { Approval, ChatRef } from '../../db/entities/approval.js';
import { approvalCount } from './approval-rules.js';

/**
 * PendingApprovalResponseDto and more. `owners` resolves approvers that default to the
 * project's owners (null when unknown). Callback secrets never leave: only type and coordinates.
 */
export function presentApproval(a: Approval, owners: string[] | null) {
  const cb = a.callback;
  return {
    id: a.id,
    executionId: a.runId ?? undefined,
    stepRef: a.stepRef ?? undefined,
    taskId: a.taskId ?? undefined,
    engine: a.engine ?? undefined,
    engineRunId: a.engineRunId ?? undefined,
    repositoryIdentifier: a.repositoryIdentifier ?? undefined,
    requestedBy: a.requestedBy,
    requestedAt: a.requestedAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    approvers: a.approvers ?? owners ?? [],
    approversSource: (a.approvers ? 'explicit' : 'owners') as 'explicit' | 'owners',
    quorum: a.quorum,
    approvalsReceived: approvalCount(a),
    allowSelfApproval: a.allowSelfApproval,
    message: a.message ?? undefined,
    context: { ...a.context, ...(cb ? { callback: { type: cb.type, ...a.chat } } : {}) } as Record<string, unknown> & { callback?: { type: string } & ChatRef },
    status: a.status,
    resolvedBy: a.resolvedBy ?? undefined,
    resolvedAt: a.resolvedAt?.toISOString(),
    reason: a.reason ?? undefined,
    decisions: a.decisions,
  };
}

/** An approval as notices and API responses carry it. */
export type PresentedApproval = ReturnType<typeof presentApproval>;
