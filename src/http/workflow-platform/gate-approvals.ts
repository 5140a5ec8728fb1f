import { z } from 'zod';
import type { Services } from '../../container.js';
import { approvalOrigins, type ApprovalOrigin } from '../../core/approvals/approval-query.js';
import { GROUP_PREFIX } from '../../core/approvals/approver-policy.js';
import type { Approval, ApprovalStatus } from '../../db/entities/approval.js';

/** This API's approval statuses. */
export const GATE_STATUSES = ['PENDING', 'APPROVED', 'REJECTED', 'EXPIRED', 'CANCELLED'] as const;
export type GateStatus = (typeof GATE_STATUSES)[number];

/** A pending approval past its expiry is EXPIRED already (the sweep closes it; no decision is taken on it). */
export function gateStatus(a: Pick<Approval, 'status' | 'expiresAt'>, now = Date.now()): GateStatus {
  if (a.status === 'pending') return a.expiresAt.getTime() <= now ? 'EXPIRED' : 'PENDING';
  return a.status === 'stale' ? 'CANCELLED' : (a.status.toUpperCase() as GateStatus);
}

/** The stored statuses a status word covers (for the list filter). */
export const coreStatusesOf = (s: GateStatus): ApprovalStatus[] => (s === 'CANCELLED' ? ['cancelled', 'stale'] : [s.toLowerCase() as ApprovalStatus]);

/** Where the approvers come from, as the flow named them: `owners`, `group:<name>`, or `list` (emails, or a mix). */
function approversFrom(a: Approval, spec: unknown): string {
  if (spec === undefined) return a.approvers ? 'list' : 'owners';
  const entries = (spec === null ? [] : Array.isArray(spec) ? spec : [spec]).map((e) => String(e).trim()).filter(Boolean);
  if (!entries.length || entries.every((e) => e === 'owners')) return 'owners';
  if (entries.length === 1 && entries[0].startsWith(GROUP_PREFIX)) return entries[0];
  return 'list';
}

const when = z.string().nullable();
export const gateApprovalSchema = z.object({
  id: z.string(), executionId: z.string().nullable(), flowId: z.string().nullable(), namespace: z.string().nullable(), taskName: z.string().nullable(),
  status: z.enum(GATE_STATUSES), message: z.string().nullable(), approvers: z.array(z.string()), approversFrom: z.string(),
  quorum: z.number().int(), allowSelfApproval: z.boolean(),
  decisions: z.array(z.object({ by: z.string(), verdict: z.enum(['APPROVE', 'REJECT']), comment: z.string().nullable(), at: z.string(), via: z.string() })),
  requestedBy: z.string(), requestedAt: z.string(), expiresAt: z.string(), decidedAt: when, decidedBy: when,
});
export type GateApproval = z.infer<typeof gateApprovalSchema>;

function present(s: Services, a: Approval, origin: ApprovalOrigin | undefined, approvers: string[]): GateApproval {
  const status = gateStatus(a);
  const taskType = origin?.taskType ?? null;
  return {
    id: a.id,
    executionId: a.runId ?? null,
    flowId: origin?.documentId ?? (taskType ? s.registry.find(taskType)?.document?.id ?? taskType : null),
    namespace: origin?.namespace ?? null,
    taskName: a.stepRef ?? a.taskId ?? null,
    status,
    message: a.message ?? null,
    approvers,
    approversFrom: approversFrom(a, origin?.approversSpec),
    quorum: a.quorum,
    allowSelfApproval: a.allowSelfApproval,
    decisions: a.decisions.map((d) => ({ by: d.email, verdict: d.verdict === 'approve' ? 'APPROVE' as const : 'REJECT' as const, comment: d.reason ?? null, at: d.at, via: d.door })),
    requestedBy: a.requestedBy,
    requestedAt: a.requestedAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    decidedAt: status === 'PENDING' ? null : a.resolvedAt?.toISOString() ?? null,
    decidedBy: a.resolvedBy ?? null,
  };
}

/**
 * Approvals as this API shows them: their runs' flows and namespaces read in one statement, the
 * approvers resolved now (a project's owners as they are, the list `decide` checks).
 */
export async function presentApprovals(s: Services, list: Approval[]): Promise<GateApproval[]> {
  const origins = await approvalOrigins(s.orm, list.map((a) => a.id));
  const owners = new Map<string, Promise<string[]>>();
  const deciders = (a: Approval) => {
    if (a.approvers || !a.repositoryIdentifier) return s.approvals.deciders(a);
    if (!owners.has(a.repositoryIdentifier)) owners.set(a.repositoryIdentifier, s.approvals.deciders(a));
    return owners.get(a.repositoryIdentifier)!;
  };
  return Promise.all(list.map(async (a) => present(s, a, origins.get(a.id), await deciders(a))));
}
