import type { MikroORM } from '@mikro-orm/postgresql';
import { Approval, ApprovalSchema, type ApprovalStatus } from '../../db/entities/approval.js';
import { columnsOf, rowTo, sql } from '../../db/sql.js';

const COLUMNS = columnsOf(ApprovalSchema);

export interface ApprovalFilter {
  /** Projects the caller may see; null: all (approvals of no project included). */
  projects: string[] | null;
  /**
   * Statuses as stored, where a pending approval past its expiry counts as `expired` (the sweep
   * closes it shortly, and no decision is taken on it any more).
   */
  statuses?: ApprovalStatus[];
  runId?: string;
  /**
   * Only the pending approvals this person may approve now: an approver (owners read live), and
   * not their own request unless allowed. (`approvers` holds JSON null, not SQL null, for owners.)
   */
  decidableBy?: string;
  /** Leaves out the approvals `decidableBy` would list for this person. */
  notDecidableBy?: string;
  /** Only those older than this one, in the listing's order (keyset paging). */
  before?: { requestedAt: Date; id: string };
  limit: number;
}

const OVERDUE = `(a.status = 'pending' and a.expires_at <= now())`;
const statusCondition = (s: ApprovalStatus) =>
  s === 'pending' ? `(a.status = 'pending' and a.expires_at > now())` : s === 'expired' ? `(a.status = 'expired' or ${OVERDUE})` : `a.status = '${s}'`;

/**
 * Pending, live, not the person's own request (unless allowed), and the person among its
 * approvers: its own list, else its project's owners. The projects the person owns are read once
 * per statement (an uncorrelated, hashed subquery), not once per approval. Three times the email.
 */
const DECIDABLE = `coalesce(a.status = 'pending' and a.expires_at > now()
  and (a.allow_self_approval or lower(a.requested_by) <> ?)
  and case when jsonb_typeof(a.approvers) = 'array'
        then exists (select 1 from jsonb_array_elements_text(a.approvers) e where lower(e) = ?)
        else a.repository_identifier in (select p.repository_identifier from projects p
               where exists (select 1 from jsonb_array_elements_text(p.owners) o where lower(o) = ?)) end, false)`;

/** Approvals newest first, filtered in one statement (the `mine` rule included, so the limit counts the right ones). */
export async function listApprovals(orm: MikroORM, f: ApprovalFilter): Promise<Approval[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.projects !== null) {
    where.push('a.repository_identifier = any(?::text[])');
    params.push(f.projects);
  }
  if (f.statuses?.length) where.push(`(${[...new Set(f.statuses)].map(statusCondition).join(' or ')})`);
  if (f.runId !== undefined) {
    where.push('a.run_id = ?');
    params.push(f.runId);
  }
  if (f.decidableBy !== undefined) {
    where.push(DECIDABLE);
    params.push(...Array(3).fill(f.decidableBy.toLowerCase()));
  }
  if (f.notDecidableBy !== undefined) {
    where.push(`not ${DECIDABLE}`);
    params.push(...Array(3).fill(f.notDecidableBy.toLowerCase()));
  }
  if (f.before) {
    where.push('(a.requested_at, a.id) < (?, ?::uuid)');
    params.push(f.before.requestedAt.toISOString(), f.before.id);
  }
  const rows = await sql(orm, `select ${COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')} from approvals a
    ${where.length ? `where ${where.join(' and ')}` : ''} order by a.requested_at desc, a.id desc limit ?`, [...params, f.limit]);
  return rows.map((r) => rowTo<Approval>(ApprovalSchema, r));
}

/** What an approval of a run shows of its run: the flow, the namespace and the approver spec as the flow wrote it. */
export interface ApprovalOrigin {
  taskType: string | null;
  documentId: string | null;
  namespace: string | null;
  /** The step's `approvers` as written (null when not written: the project's owners); undefined when unknown. */
  approversSpec: unknown;
}

/** The origins of many approvals in one statement, by approval id. */
export async function approvalOrigins(orm: MikroORM, ids: string[]): Promise<Map<string, ApprovalOrigin>> {
  if (!ids.length) return new Map();
  const rows = await sql<{ id: string; task_type: string | null; document_id: string | null; namespace: string | null; has_step: boolean; spec: unknown }>(orm,
    `select a.id, r.task_type, r.definition->'document'->>'id' as document_id, p.namespace,
       s.step is not null as has_step, s.step->'with'->'approvers' as spec
     from approvals a
     left join runs r on r.id = a.run_id
     left join projects p on p.repository_identifier = a.repository_identifier
     left join lateral (select x as step from jsonb_array_elements(case when jsonb_typeof(r.definition->'steps') = 'array' then r.definition->'steps' else '[]'::jsonb end) x
                        where x->>'ref' = a.step_ref limit 1) s on true
     where a.id = any(?::uuid[])`, [ids]);
  return new Map(rows.map((r) => [r.id, { taskType: r.task_type, documentId: r.document_id, namespace: r.namespace, approversSpec: r.has_step ? r.spec : undefined }]));
}
