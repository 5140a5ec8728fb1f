import type { Services } from '../../container.js';
import { refusal, type Person } from '../../core/approvals/approval-rules.js';
import { presentApproval } from '../../core/approvals/present-approval.js';
import type { ApprovalView } from './messages.js';

/**
 * Pending, unexpired approvals the person may at least reject, by the core's rule
 * (`refusal` over `ApprovalService.deciders`, the check `decide` makes). Only for listing: deciding is `decide`'s.
 */
export async function decidableBy(s: Services, person: Person, now = new Date()): Promise<ApprovalView[]> {
  const views: ApprovalView[] = [];
  for (const a of await s.approvals.listPending(null)) {
    if (a.expiresAt <= now) continue;
    const deciders = await s.approvals.deciders(a);
    if (!refusal(a, person, 'reject', deciders)) views.push(presentApproval(a, deciders));
  }
  return views;
}
