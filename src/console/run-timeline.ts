import type { Services } from '../container.js';
import type { Approval } from '../db/entities/approval.js';
import { sql } from '../db/sql.js';

/** One thing that happened to an approval of the run: asked, a vote, a decision, a refused attempt, an end. */
export interface TimelineEntry {
  at: Date;
  approvalId: string;
  stepRef: string | null;
  /** `requested`, `vote`, `approved`, `rejected`, `refused`, `expired`, `cancelled`, `stale`. */
  kind: string;
  door: string;
  /** The identity the door resolved and the core used: an email, `token:<name>`, `user:<name>`, or `system`. */
  who: string;
  /** The person's display name as the door gave it, when it says more than `who`. */
  name?: string;
  /** The identity the door knew them by and how it became `who` (Slack user, GitHub login, token…). */
  as?: string;
  verdict?: 'approve' | 'reject';
  /** A refusal's rule, or a decision's comment. */
  reason?: string;
  /** Set when run control, not a person's vote, closed the approval. */
  byControl?: boolean;
}

interface AuditRow { id: string; at: Date; actor: string; door: string; action: string; target_id: string; details: Record<string, unknown> | null }

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);

/**
 * Every vote, decision and refused attempt on the run's approvals, from every door, oldest first:
 * the audit trail (which keeps refusals and their rule) joined with the approvals' own decisions
 * (which keep the names doors gave). A decision the trail lacks (older rows) still shows.
 */
export async function decisionTimeline(s: Services, approvals: Approval[]): Promise<TimelineEntry[]> {
  if (!approvals.length) return [];
  const rows = await sql<AuditRow>(s.orm, `select id, at, actor, door, action, target_id, details from audit_events
    where target_type = 'approval' and target_id = any(?::text[]) order by at, id`, [approvals.map((a) => a.id)]);
  const byId = new Map(approvals.map((a) => [a.id, a]));
  const unmatched = new Map(approvals.map((a) => [a.id, [...a.decisions]]));
  const entries: TimelineEntry[] = [];
  for (const r of rows) {
    const a = byId.get(r.target_id)!;
    const d = r.details ?? {};
    const kind = r.action.startsWith('approval.') ? r.action.slice('approval.'.length) : r.action;
    const verdict = d.verdict === 'approve' || d.verdict === 'reject' ? d.verdict : undefined;
    const entry: TimelineEntry = { at: new Date(r.at), approvalId: a.id, stepRef: a.stepRef ?? null, kind, door: r.door, who: r.actor, verdict, reason: str(d.reason), as: str(d.as), byControl: d.by === 'run control' || undefined };
    if (verdict && kind !== 'refused') {
      // The decision this record is of: the same person and verdict, not matched yet.
      const left = unmatched.get(a.id)!;
      const i = left.findIndex((x) => x.email.toLowerCase() === r.actor.toLowerCase() && x.verdict === verdict);
      if (i >= 0) {
        const [decision] = left.splice(i, 1);
        if (decision.name && decision.name.toLowerCase() !== decision.email.toLowerCase()) entry.name = decision.name;
        entry.reason ??= decision.reason ?? undefined;
      }
    }
    entries.push(entry);
  }
  for (const [id, left] of unmatched) {
    const a = byId.get(id)!;
    for (const x of left) {
      entries.push({ at: new Date(x.at), approvalId: id, stepRef: a.stepRef ?? null, kind: 'vote', door: x.door, who: x.email, name: x.name !== x.email ? x.name : undefined, verdict: x.verdict, reason: x.reason ?? undefined });
    }
  }
  return entries.sort((x, y) => x.at.getTime() - y.at.getTime());
}

/** What an entry says happened, in words. */
export function describe(e: TimelineEntry): string {
  switch (e.kind) {
    case 'requested': return 'asked for approval';
    case 'vote': return e.verdict === 'reject' ? 'rejected' : 'approved (a vote; more approvals needed)';
    case 'approved': return 'approved — the request is approved';
    case 'rejected': return e.byControl ? 'rejected by run control (step skipped)' : 'rejected — the request is rejected';
    case 'refused': return `was refused ${e.verdict === 'reject' ? 'rejecting' : e.verdict === 'approve' ? 'approving' : 'deciding'}`;
    case 'expired': return 'expired: nobody decided in time';
    case 'cancelled': return e.byControl ? 'cancelled by run control' : 'cancelled (the run was cancelled)';
    case 'stale': return 'closed as stale (the run ended otherwise)';
    default: return e.kind;
  }
}
