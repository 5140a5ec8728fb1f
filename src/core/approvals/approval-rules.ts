import type { Approval, Decision } from '../../db/entities/approval.js';

/** The person acting: always an email, resolved by the door from its own identity. */
export interface Person {
  email: string;
  name: string;
  /**
   * The identity the door knew them by and how it became this email (`Slack user U0ABC, by its
   * profile email`, `GitHub @octo (user id 42), linked in Flowgate`, `Token "ci"`): kept in the
   * audit trail with each decision and refusal, so a decision can be traced to the credential used.
   */
  as?: string;
}

export type Verdict = 'approve' | 'reject';

/** Why a person may not decide, or undefined when they may. Pure: every door shares it. */
export function refusal(a: Approval, person: Person, verdict: Verdict, projectOwners: string[]): string | undefined {
  const email = person.email.toLowerCase();
  const allowed = (a.approvers ?? projectOwners).map((e) => e.toLowerCase());
  if (!allowed.includes(email)) {
    return a.approvers
      ? `${email} is not an approver of this request (approvers: ${allowed.join(', ') || 'none'})`
      : `${email} is not an owner of ${a.repositoryIdentifier ?? 'the project'}, and only owners may decide this request`;
  }
  if (verdict === 'approve' && !a.allowSelfApproval && email === a.requestedBy.toLowerCase())
    return `${email} requested this and may not approve their own request`;
  return undefined;
}

/** Applies a decision to a pending approval (mutates it). Returns whether the status changed. */
export function applyDecision(a: Approval, person: Person, verdict: Verdict, reason: string | null, door: string, at: Date): boolean {
  const email = person.email.toLowerCase();
  const decision: Decision = { email, name: person.name, verdict, reason, door, at: at.toISOString() };
  if (verdict === 'reject') {
    a.decisions = [...a.decisions, decision];
    a.status = 'rejected';
    a.resolvedBy = email;
    a.resolvedAt = at;
    a.reason = reason;
    return true;
  }
  // The same person approving twice counts once.
  if (!a.decisions.some((d) => d.verdict === 'approve' && d.email === email)) a.decisions = [...a.decisions, decision];
  const approvals = new Set(a.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email));
  if (approvals.size < a.quorum) return false;
  a.status = 'approved';
  a.resolvedBy = [...approvals].join(', ');
  a.resolvedAt = at;
  return true;
}

export const approvalCount = (a: Approval) => new Set(a.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email)).size;
