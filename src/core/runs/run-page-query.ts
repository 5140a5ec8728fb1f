import type { MikroORM } from '@mikro-orm/postgresql';
import { Run } from '../../db/entities/run.js';
import { sql } from '../../db/sql.js';
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

/**
 * Where a window of runs starts in (created_at desc, id desc) order: `forward` lists the runs
 * after `position` (older), `backward` the `limit` runs just before it (newer); `inclusive` takes
 * the run at `position` too (to fetch a page again from its first or last run).
 */
export interface RunBound {
  position: RunPosition;
  direction: 'forward' | 'backward';
  inclusive: boolean;
}

export interface RunWindowFilter {
  /** The projects whose runs are listed; null means every project. */
  projects: readonly string[] | null;
  limit: number;
  /** No bound: the newest runs. */
  bound?: RunBound;
}

export interface RunWindow {
  /** Newest first, with each run's exact position. */
  runs: { id: string; position: RunPosition }[];
  /** Whether runs come before the first one of the window (newer), and after its last (older). */
  before: boolean;
  after: boolean;
}

const OLDER = { exclusive: '<', inclusive: '<=' } as const;
const NEWER = { exclusive: '>', inclusive: '>=' } as const;

/**
 * A window of the runs of several projects (or all registered ones), either way from a position:
 * per project a keyset scan of `runs_repo_created`, merged (no index of its own: every index on
 * `runs` is paid by each run's insert, claim and flush). Paging stays stable while runs are added;
 * whether more runs lie beyond either end is read too, for cursors both ways.
 */
export async function runWindow(orm: MikroORM, f: RunWindowFilter): Promise<RunWindow> {
  const projects = f.projects ?? (await sql<{ repository_identifier: string }>(orm, 'select repository_identifier from projects')).map((p) => p.repository_identifier);
  if (!projects.length) return { runs: [], before: false, after: false };
  const at = `to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  const exists = async (op: string, p: RunPosition) => (await sql<{ found: boolean }>(orm,
    `select exists (select 1 from unnest(?::text[]) as p(repo), lateral (
       select 1 from runs where repository_identifier = p.repo and (created_at, id) ${op} (?::timestamptz, ?::uuid) limit 1) x) as found`,
    [projects, p.createdAt, p.id]))[0].found;
  const b = f.bound;
  const backward = b?.direction === 'backward';
  const kind = b?.inclusive ? 'inclusive' : 'exclusive';
  const where = b ? `and (created_at, id) ${(backward ? NEWER : OLDER)[kind]} (?::timestamptz, ?::uuid)` : '';
  const dir = backward ? 'asc' : 'desc';
  const rows = await sql<{ id: string; at: string }>(orm,
    `select x.id, x.at from unnest(?::text[]) as p(repo), lateral (
       select id, created_at, ${at} as at from runs where repository_identifier = p.repo ${where}
       order by created_at ${dir}, id ${dir} limit ?) x
     order by x.created_at ${dir}, x.id ${dir} limit ?`,
    [projects, ...(b ? [b.position.createdAt, b.position.id] : []), f.limit + 1, f.limit + 1]);
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit).map((r) => ({ id: r.id, position: { createdAt: r.at, id: r.id } }));
  if (backward) page.reverse();
  // The other end: beyond the window's own edge, or (an empty window) beyond the bound itself.
  let other = false;
  if (b) {
    const edge = backward ? page.at(-1)?.position : page[0]?.position;
    if (edge) other = await exists(backward ? '<' : '>', edge);
    else other = await exists(backward ? (b.inclusive ? '<' : '<=') : (b.inclusive ? '>' : '>='), b.position);
  }
  return backward ? { runs: page, before: more, after: other } : { runs: page, before: other, after: more };
}
