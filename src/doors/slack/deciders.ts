import type { Services } from '../../container.js';
import { refusal, type Person, type Verdict } from '../../core/approvals/approval-rules.js';
import { presentApproval } from '../../core/approvals/present-approval.js';
import type { Approval } from '../../db/entities/approval.js';
import type { ApprovalView } from './messages.js';

/**
 * Why a person may not decide an approval, by the core's rule (`refusal`), with the project's
 * owners looked up as `ApprovalService.decide` does. Used only to answer early (no modal for
 * someone who may not reject) and to list; the decision itself is always `decide`'s.
 */
export async function refusalFor(s: Services, a: Approval, person: Person, verdict: Verdict): Promise<string | undefined> {
  return refusal(a, person, verdict, await ownersOf(s, a));
}

/** Pending, unexpired approvals the person is an approver of (they may at least reject). */
export async function decidableBy(s: Services, person: Person, now = new Date()): Promise<ApprovalView[]> {
  const owners = new Map((await s.projects.list(null)).map((p) => [p.repositoryIdentifier, p.owners]));
  const views: ApprovalView[] = [];
  for (const a of await s.approvals.listPending(null)) {
    if (a.expiresAt <= now) continue;
    const theirs = a.approvers || !a.repositoryIdentifier ? [] : owners.get(a.repositoryIdentifier) ?? [];
    if (!refusal(a, person, 'reject', theirs)) views.push(presentApproval(a, a.approvers ? null : theirs));
  }
  return views;
}

async function ownersOf(s: Services, a: Approval): Promise<string[]> {
  if (a.approvers || !a.repositoryIdentifier) return [];
  return (await s.projects.find(a.repositoryIdentifier))?.owners ?? [];
}
