import type { EntityManager, FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import { Run } from '../../db/entities/run.js';
import { escapeLike } from '../../db/sql.js';

export interface RunFilter {
  repositoryIdentifier: string;
  executionMode?: 'flow' | 'cicd';
  category?: string;
  taskType?: string;
  flowPath?: string;
  workItemKey?: string;
  workItemType?: string;
  since?: Date;
  triggeredBy?: string;
  includeScheduled: boolean;
  /** A calendar day (UTC). */
  date?: string;
  limit: number;
  page: number;
}


/** One page of a project's runs, newest first, with the total count of matches. */
export async function listRuns(orm: MikroORM, f: RunFilter): Promise<{ runs: Run[]; total: number; estimated: boolean }> {
  const where: Record<string, unknown> = { repositoryIdentifier: f.repositoryIdentifier };
  if (f.executionMode) where.executionMode = f.executionMode;
  if (f.category) where.category = f.category;
  if (f.taskType) where.taskType = f.taskType;
  if (f.flowPath) where.flowPath = { $ilike: `%${escapeLike(f.flowPath)}%` };
  if (f.triggeredBy) where.triggeredBy = f.triggeredBy;
  if (f.workItemKey || f.workItemType) {
    where.workItemRef = { ...(f.workItemKey ? { key: f.workItemKey } : {}), ...(f.workItemType ? { type: f.workItemType } : {}) };
  }
  const created: Record<string, Date> = {};
  if (f.since) created.$gte = f.since;
  if (f.date) {
    const day = new Date(`${f.date}T00:00:00.000Z`);
    created.$gte = f.since && f.since > day ? f.since : day;
    created.$lt = new Date(day.getTime() + 86_400_000);
  }
  if (Object.keys(created).length) where.createdAt = created;
  if (!f.includeScheduled) where.schedulePath = null;
  const em = orm.em.fork();
  const [runs, counted] = await Promise.all([
    em.find(Run, where as FilterQuery<Run>, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: f.limit, offset: (f.page - 1) * f.limit }),
    countMatches(em, where),
  ]);
  return { runs, total: counted.total, estimated: counted.estimated };
}

/** Exact up to this many matches; beyond it the planner's estimate (counting millions costs seconds). */
export const EXACT_COUNT_LIMIT = 10_000;

async function countMatches(em: EntityManager, where: Record<string, unknown>): Promise<{ total: number; estimated: boolean }> {
  const bounded = em.createQueryBuilder(Run).select('id').where(where).limit(EXACT_COUNT_LIMIT + 1).getFormattedQuery();
  const conn = em.getConnection();
  const [{ n }] = await conn.execute<{ n: number }[]>(`select count(*)::int as n from (${bounded}) t`);
  if (n <= EXACT_COUNT_LIMIT) return { total: n, estimated: false };
  const all = em.createQueryBuilder(Run).select('id').where(where).getFormattedQuery();
  const [plan] = await conn.execute<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[]>(`explain (format json) ${all}`);
  return { total: Math.max(n, Math.round(plan['QUERY PLAN'][0].Plan['Plan Rows'])), estimated: true };
}

/** `24h`, `30m`, `7d`, `2w` or an ISO-8601 timestamp → the instant it means (relative to `now`). */
export function parseSince(value: string, now = Date.now()): Date | undefined {
  const rel = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  if (rel) {
    const unit = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[rel[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return new Date(now - Number(rel[1]) * unit);
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/.exec(value.trim());
  if (!m) return undefined;
  // A time without an offset is UTC, whatever the server's time zone.
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00:00'}${m[5] ?? 'Z'}`);
  if (Number.isNaN(d.getTime())) return undefined;
  // Reject impossible days (2026-02-30) instead of rolling them over.
  if (!m[5] && d.toISOString().slice(0, 10) !== `${m[1]}-${m[2]}-${m[3]}`) return undefined;
  return d;
}

/** How many runs several projects (or all: null) have; exact up to `EXACT_COUNT_LIMIT`, as `listRuns` counts. */
export async function countRuns(orm: MikroORM, projects: readonly string[] | null): Promise<{ total: number; estimated: boolean }> {
  if (projects && !projects.length) return { total: 0, estimated: false };
  return countMatches(orm.em.fork(), projects ? { repositoryIdentifier: { $in: [...projects] } } : {});
}
