import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';

export interface AuditSearch {
  limit: number;
  since?: Date;
  actor?: string;
  /** An exact action, or a prefix ending in `.` (from `flow.*`). */
  action?: { exact: string } | { prefix: string };
  targetType?: string;
  targetId?: string;
  /** Events older than this one (the last of the previous page; it must exist, see `auditEventExists`). */
  before?: string;
}

/** `at` as the pool hands timestamps over: text (or a Date). */
export interface AuditRow { id: string; at: Date | string; actor: string; door: string; action: string; target_type: string; target_id: string; details: Record<string, unknown> | null }

/**
 * Audit events, newest first. Ordered by (at, id), so a page boundary inside one instant holds;
 * the `at` index (or the target one when a resource is named) serves the order.
 */
export async function searchAudit(orm: MikroORM, q: AuditSearch): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (cond: string, ...values: unknown[]) => { where.push(cond); params.push(...values); };
  if (q.since) add('at >= ?', q.since);
  if (q.actor !== undefined) add('actor = ?', q.actor);
  if (q.action && 'exact' in q.action) add('action = ?', q.action.exact);
  if (q.action && 'prefix' in q.action) add('starts_with(action, ?)', q.action.prefix);
  if (q.targetType !== undefined) add('target_type = ?', q.targetType);
  if (q.targetId !== undefined) add('target_id = ?', q.targetId);
  // Compared in SQL: `at` holds microseconds, which a JavaScript date would round away. The `at <=`
  // half is where the `at` index starts its scan; the row comparison orders ties by id.
  if (q.before) add('at <= (select at from audit_events where id = ?) and (at, id) < (select at, id from audit_events where id = ?)', q.before, q.before);
  return sql<AuditRow>(orm,
    `select id, at, actor, door, action, target_type, target_id, details from audit_events
     ${where.length ? `where ${where.join(' and ')}` : ''} order by at desc, id desc limit ?`, [...params, q.limit]);
}

export async function auditEventExists(orm: MikroORM, id: string): Promise<boolean> {
  return (await sql(orm, 'select 1 from audit_events where id = ?', [id])).length > 0;
}
