import type { Services } from '../container.js';
import { approvalOrigins, listApprovals, type ApprovalOrigin } from '../core/approvals/approval-query.js';
import { refusal } from '../core/approvals/approval-rules.js';
import type { Approval } from '../db/entities/approval.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { canAccessProject } from '../core/identity/principal.js';
import { sql } from '../db/sql.js';
import { notFound } from '../errors.js';
import { whereAsked, type PlaceLink } from './where-asked.js';

/** One approval as the console shows it: what it is bound to, who decided, who still can, and what the viewer may do. */
export interface ApprovalCard {
  approval: Approval;
  flow: string | null;
  /** The run's parameters: what an approval of a run is bound to. */
  payload: Record<string, unknown> | null;
  runStatus: string | null;
  where: PlaceLink[];
  deciders: string[];
  approvedBy: Array<{ email: string; door: string; at: string }>;
  /** Deciders who have not approved yet and may (the requester only when self-approval is allowed). */
  stillCan: string[];
  canApprove: boolean;
  canReject: boolean;
  /** Why the viewer sees no buttons, in the words `decide` would refuse with. */
  why?: string;
}

/** Cards per inbox section and page. */
export const INBOX_PAGE = 200;

/** The cards of several approvals, with their runs and deciders read in a few statements. */
export async function approvalCards(s: Services, approvals: Approval[], viewer: ConsoleIdentity): Promise<ApprovalCard[]> {
  if (!approvals.length) return [];
  const runIds = [...new Set(approvals.map((a) => a.runId).filter((id): id is string => !!id))];
  const [origins, runs] = await Promise.all([
    approvalOrigins(s.orm, approvals.map((a) => a.id)),
    runIds.length ? sql<{ id: string; payload: Record<string, unknown>; status: string }>(s.orm, 'select id, payload, status from runs where id = any(?::uuid[])', [runIds]) : [],
  ]);
  const runOf = new Map(runs.map((r) => [r.id, r]));
  const ownersCache = new Map<string, Promise<string[]>>();
  return Promise.all(approvals.map(async (a) => {
    const key = a.approvers ? '' : a.repositoryIdentifier ?? '';
    const deciders = a.approvers ?? await (ownersCache.get(key) ?? ownersCache.set(key, s.approvals.deciders(a)).get(key)!);
    return card(s, a, origins.get(a.id), runOf.get(a.runId ?? ''), deciders, viewer);
  }));
}

function card(s: Services, a: Approval, origin: ApprovalOrigin | undefined, run: { payload: Record<string, unknown>; status: string } | undefined, deciders: string[], viewer: ConsoleIdentity): ApprovalCard {
  const approved = new Map<string, { email: string; door: string; at: string }>();
  for (const d of a.decisions) if (d.verdict === 'approve' && !approved.has(d.email)) approved.set(d.email, { email: d.email, door: d.door, at: d.at });
  const requester = a.requestedBy.toLowerCase();
  const stillCan = deciders.map((e) => e.toLowerCase()).filter((e) => !approved.has(e) && (a.allowSelfApproval || e !== requester));
  let why: string | undefined;
  let canApprove = false;
  let canReject = false;
  const live = a.status === 'pending' && a.expiresAt > new Date();
  if (!live) why = a.status === 'pending' ? `This request expired at ${a.expiresAt.toISOString()}` : `This request is already ${a.status}`;
  else if (!viewer.person) why = `Token "${viewer.principal.name}" has no email, so it cannot decide approvals`;
  else {
    // The same pure rule `decide` applies, over the deciders already read (the decision asks it again under the row lock).
    const refuseApprove = refusal(a, viewer.person, 'approve', deciders);
    const refuseReject = refusal(a, viewer.person, 'reject', deciders);
    canApprove = !refuseApprove && !approved.has(viewer.person.email.toLowerCase());
    canReject = !refuseReject;
    if (!canApprove && !canReject) why = refuseApprove ?? refuseReject;
    else if (!canApprove) why = refuseApprove ?? `${viewer.person.email} has approved already; ${a.quorum - approved.size} more approval(s) needed`;
  }
  return {
    approval: a, flow: origin?.taskType ?? a.taskId ?? null, payload: run?.payload ?? null, runStatus: run?.status ?? null,
    where: whereAsked(s.config, a), deciders, approvedBy: [...approved.values()], stillCan, canApprove, canReject, why,
  };
}

/** Where a section of the inbox goes on: after this approval, in the listing's order. */
export interface InboxCursor { requestedAt: Date; id: string }

export interface InboxSection {
  cards: ApprovalCard[];
  /** Set when older approvals follow: the cursor of the next page. */
  more: InboxCursor | null;
}

/**
 * The inbox: pending approvals the viewer may decide (wherever they were asked, whatever project),
 * then the other pending ones of the viewer's projects, which they may see but not decide. Each
 * section shows the newest `INBOX_PAGE` and pages on by keyset, so a flood of requests still
 * renders quickly and says there is more.
 */
export async function inbox(s: Services, viewer: ConsoleIdentity, from: { mine?: InboxCursor; others?: InboxCursor } = {}): Promise<{ mine: InboxSection; others: InboxSection }> {
  const email = viewer.person?.email;
  const [decidable, visible] = await Promise.all([
    email ? listApprovals(s.orm, { projects: null, decidableBy: email, before: from.mine, limit: INBOX_PAGE + 1 }) : Promise.resolve([]),
    // What the viewer may decide is in their own section (on some page), never here too.
    listApprovals(s.orm, { projects: viewer.principal.projects, statuses: ['pending'], notDecidableBy: email, before: from.others, limit: INBOX_PAGE + 1 }),
  ]);
  const mine = decidable.slice(0, INBOX_PAGE);
  const others = visible.slice(0, INBOX_PAGE);
  const cards = await approvalCards(s, [...mine, ...others], viewer);
  const next = (list: Approval[]) => (list.length > INBOX_PAGE ? { requestedAt: list[INBOX_PAGE - 1].requestedAt, id: list[INBOX_PAGE - 1].id } : null);
  return {
    mine: { cards: cards.slice(0, mine.length), more: next(decidable) },
    others: { cards: cards.slice(mine.length), more: next(visible) },
  };
}

/** How many approvals wait on the viewer (the nav's badge), counted up to `INBOX_PAGE + 1` ("200+"). */
export async function waitingCount(s: Services, viewer: ConsoleIdentity): Promise<number> {
  if (!viewer.person) return 0;
  return (await listApprovals(s.orm, { projects: null, decidableBy: viewer.person.email, limit: INBOX_PAGE + 1 })).length;
}

/**
 * One approval for the viewer: one they may decide, or one of a project they may see. Anything
 * else is "not found", so ids of other projects' approvals tell nothing.
 */
export async function visibleApproval(s: Services, id: string, viewer: ConsoleIdentity): Promise<ApprovalCard> {
  const a = await s.approvals.get(id);
  const mayDecide = a && viewer.person ? (await s.approvals.deciders(a)).map((e) => e.toLowerCase()).includes(viewer.person.email.toLowerCase()) : false;
  if (!a || (!mayDecide && !(a.repositoryIdentifier ? canAccessProject(viewer.principal, a.repositoryIdentifier) : viewer.principal.projects === null)))
    throw notFound(`Approval request ${id} not found`);
  return (await approvalCards(s, [a], viewer))[0];
}
