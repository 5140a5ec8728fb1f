import { z } from 'zod';
import type { Services } from '../../container.js';
import { listApprovals } from '../../core/approvals/approval-query.js';
import type { Verdict } from '../../core/approvals/approval-rules.js';
import { callerLabel, canAccessProject, type Principal } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { isUuid } from '../../core/ids.js';
import type { Approval } from '../../db/entities/approval.js';
import { AppError, conflict, forbidden, notFound } from '../../errors.js';
import { route } from '../route.js';
import { coreStatusesOf, GATE_STATUSES, gateApprovalSchema, gateStatus, presentApprovals, type GateStatus } from './gate-approvals.js';
import { visibleNamespace } from './namespace.js';
import { storable } from './schemas.js';
import { EXECUTE_ROLES } from './roles.js';

/** Executors decide, as approvers; application tokens execute but never decide (they are no person). */
const DECIDE_ROLES = EXECUTE_ROLES.filter((r) => r !== 'application');
const MAX_LIST = 500;

const statusList = z.string().transform((v, ctx): GateStatus[] => {
  const words = [...new Set(v.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean))];
  const unknown = words.filter((w) => !GATE_STATUSES.includes(w as GateStatus));
  if (!words.length || unknown.length) {
    ctx.addIssue({ code: 'custom', message: `${unknown.length ? `unknown: ${unknown.join(', ')}; ` : ''}one or more of ${GATE_STATUSES.join(', ')} (comma-separated)` });
    return z.NEVER;
  }
  return words as GateStatus[];
});
const listQuery = z.strictObject({
  status: statusList.optional(),
  executionId: z.string().min(1).max(200).optional(),
  namespace: z.string().min(1).max(63).optional(),
  mine: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
});
const idParams = z.object({ id: z.string().min(1).max(200) });
const text = storable.trim().min(1, 'must not be empty').max(2_000);
const approveBody = z.strictObject({ comment: text.optional() });
const rejectBody = z.strictObject({ reason: text.optional(), comment: text.optional() })
  .refine((b) => b.reason !== undefined || b.comment !== undefined, { path: ['reason'], message: 'required: why the request is rejected' });

/** Whether the caller may decide at all: a deciding role and a person (an email) to decide as. */
const canDecide = (p: Principal) => (DECIDE_ROLES as readonly string[]).includes(p.role) && !!p.email;

/**
 * Gate approvals (`flow.approval` tasks, and approvals of external engines): one approval, many
 * doors. Decisions go through the same `ApprovalService.decide` as Slack, GitHub and the sfp API
 * (door `rest`), so the rules, the audit and the chat cards are the same.
 */
export function approvalRoutes(s: Services) {
  /** An approval the caller may see (one of another namespace, or of none for a scoped caller, reads as missing). */
  const visible = async (p: Principal, id: string): Promise<Approval> => {
    const a = isUuid(id) ? await s.approvals.get(id) : null;
    const seen = a && (a.repositoryIdentifier ? canAccessProject(p, a.repositoryIdentifier) : p.projects === null);
    if (!a || !seen) throw notFound(`No approval ${id}`);
    return a;
  };
  const one = async (a: Approval) => (await presentApprovals(s, [a]))[0];

  const decision = (verdict: Verdict) => route({
    method: 'post', path: `/approvals/{id}/${verdict}`, roles: DECIDE_ROLES, params: idParams, body: verdict === 'approve' ? approveBody : rejectBody,
    summary: verdict === 'approve' ? 'Approve (one vote toward the quorum)' : 'Reject (one rejection decides)',
    description: verdict === 'approve'
      ? '`{comment?}`. Decided as the caller\'s email; the answer is the approval after the vote (still PENDING while short of the quorum; one person counts once).'
      : '`{reason}` (`comment` is read as the reason). Decided as the caller\'s email.',
    responses: {
      200: { description: 'The approval after the decision', schema: gateApprovalSchema }, 400: 'No reason (reject)',
      403: 'No email, not an approver, or the caller\'s own request (audited; the approval stays PENDING)', 404: 'Approval not found',
      409: 'Already decided (`status` says how)',
    },
    async handler({ principal, params, body }) {
      const a = await visible(principal, params.id);
      if (!principal.email) throw forbidden(`account ${principal.name} has no email; an admin must set one`);
      const b = body as { comment?: string; reason?: string };
      const reason = (verdict === 'reject' ? b.reason ?? b.comment : b.comment) ?? null;
      try {
        return { body: await one(await s.approvals.decide(a.id, { email: principal.email, name: principal.name, as: callerLabel(principal) }, verdict, reason, 'rest')) };
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'conflict') throw err;
        const now = gateStatus((await s.approvals.get(a.id)) ?? a);
        throw conflict(`approval is already ${now}`, { status: now });
      }
    },
  });

  return [
    route({
      method: 'get', path: '/approvals', roles: READ_ROLES, query: listQuery,
      summary: 'List gate approvals, newest first (at most 500)',
      description: '`status` takes a comma-separated list; `mine=true`: the pending approvals the caller may approve now.',
      responses: { 200: { description: 'Approvals', schema: gateApprovalSchema.array() }, 404: 'Namespace not found' },
      async handler({ principal, query }) {
        const projects = query.namespace !== undefined ? [(await visibleNamespace(s, principal, query.namespace)).repositoryIdentifier] : principal.projects;
        if (query.mine && !canDecide(principal)) return { body: [] };
        if (query.executionId !== undefined && !isUuid(query.executionId)) return { body: [] };
        const list = await listApprovals(s.orm, {
          projects, statuses: query.status?.flatMap(coreStatusesOf), runId: query.executionId,
          decidableBy: query.mine ? principal.email! : undefined, limit: MAX_LIST,
        });
        return { body: await presentApprovals(s, list) };
      },
    }),
    route({
      method: 'get', path: '/approvals/{id}', roles: READ_ROLES, params: idParams, summary: 'Get a gate approval',
      responses: { 200: { description: 'The approval', schema: gateApprovalSchema }, 404: 'Approval not found' },
      async handler({ principal, params }) {
        return { body: await one(await visible(principal, params.id)) };
      },
    }),
    decision('approve'),
    decision('reject'),
  ];
}
