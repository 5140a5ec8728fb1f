import type { MikroORM } from '@mikro-orm/postgresql';
import { Run } from '../../db/entities/run.js';
import type { RunStatus } from '../status.js';

/** Where a page ends: the last run's exact `created_at` (microseconds, as stored) and id. */
export interface RunPosition {
  createdAt: string;
  id: string;
}

export interface RunPageFilter {
  repositoryIdentifier: string;
  statuses?: readonly RunStatus[];
  tagKey?: string;
  /** Only with `tagKey`. */
  tagValue?: string;
  limit: number;
  /** Runs strictly after this position in (created_at desc, id desc) order. */
  after?: RunPosition;
}

/**
 * One page of a project's runs by keyset over (created_at desc, id desc): stable while runs are
 * added (no offsets, so no duplicates or gaps), and a range scan of `runs_repo_created`.
 * `next` is set only when another run follows.
 */
export async function pageRuns(orm: MikroORM, f: RunPageFilter): Promise<{ ids: string[]; next: RunPosition | null }> {
  const where = ['repository_identifier = ?'];
  const params: unknown[] = [f.repositoryIdentifier];
  if (f.statuses?.length) {
    where.push(`status in (${f.statuses.map(() => '?').join(', ')})`);
    params.push(...f.statuses);
  }
  if (f.tagKey !== undefined && f.tagValue !== undefined) {
    where.push('tags @> ?::jsonb');
    params.push(JSON.stringify({ [f.tagKey]: f.tagValue }));
  } else if (f.tagKey !== undefined) {
    // `\\?` is knex's escape for the jsonb key-exists operator (a bare `?` is a binding).
    where.push('tags \\? ?');
    params.push(f.tagKey);
  }
  if (f.after) {
    where.push('(created_at, id) < (?::timestamptz, ?::uuid)');
    params.push(f.after.createdAt, f.after.id);
  }
  params.push(f.limit + 1);
  // The position is read as text from PostgreSQL: a JS Date would drop the microseconds and skip or repeat runs.
  const rows = await orm.em.getConnection().getKnex().raw<{ rows: { id: string; at: string }[] }>(
    `select id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from runs
     where ${where.join(' and ')} order by created_at desc, id desc limit ?`, params as never);
  const page = rows.rows.slice(0, f.limit);
  const last = page.at(-1);
  return { ids: page.map((r) => r.id), next: rows.rows.length > f.limit && last ? { createdAt: last.at, id: last.id } : null };
}

/** Loads runs by id, in the order given. */
export async function runsInOrder(orm: MikroORM, ids: string[]): Promise<Run[]> {
  if (!ids.length) return [];
  const found = await orm.em.fork().find(Run, { id: { $in: ids } });
  const byId = new Map(found.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id)).filter((r): r is Run => !!r);
}
