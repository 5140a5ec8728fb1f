import type { MikroORM } from '@mikro-orm/postgresql';
import { sql, sqlList } from '../../db/sql.js';
import { TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES, type RunStatus } from '../status.js';

/** A condition on the columns of `runs`, with `?` placeholders and their values. */
export interface RunCondition {
  sql: string;
  params: unknown[];
}

export interface RunListFilter {
  /** The projects whose runs are listed; null means every registered project. */
  projects: readonly string[] | null;
  taskTypes?: readonly string[];
  statuses?: readonly RunStatus[];
  /** Created at or after. */
  since?: Date;
  /** Only runs after this one in (created_at desc, id desc) order: pages at any depth. */
  beforeId?: string;
  /** Further conditions (a dialect's derived fields). */
  conditions?: readonly RunCondition[];
  offset: number;
  limit: number;
}

/**
 * One page of the runs of several projects, newest first (created_at desc, id desc): per project
 * a range scan of `runs_repo_created` taking at most `offset + limit` runs, merged. No index of
 * its own (every index on `runs` is paid by each run's insert, claim and flush), so offsets stay
 * bounded by the caller; `beforeId` pages at any depth.
 */
export async function listRunIds(orm: MikroORM, f: RunListFilter): Promise<string[]> {
  const projects = f.projects ?? (await sql<{ repository_identifier: string }>(orm, 'select repository_identifier from projects')).map((p) => p.repository_identifier);
  if (!projects.length || f.limit <= 0) return [];
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    params.push(...values);
  };
  if (f.taskTypes?.length) add('task_type = any(?::text[])', [...f.taskTypes]);
  if (f.statuses?.length) add('status = any(?::text[])', [...f.statuses]);
  if (f.since) add('created_at >= ?', f.since);
  // Compared in PostgreSQL: a JavaScript Date would drop the microseconds of the position.
  if (f.beforeId) add('(created_at, id) < (select b.created_at, b.id from runs b where b.id = ?::uuid)', f.beforeId);
  for (const c of f.conditions ?? []) add(`(${c.sql})`, ...c.params);
  const take = f.offset + f.limit;
  const rows = await sql<{ id: string }>(orm,
    `select x.id from unnest(?::text[]) as p(repo), lateral (
       select id, created_at from runs where repository_identifier = p.repo ${where.map((w) => `and ${w}`).join(' ')}
       order by created_at desc, id desc limit ?) x
     order by x.created_at desc, x.id desc limit ? offset ?`,
    [[...projects], ...params, take, f.limit, f.offset]);
  return rows.map((r) => r.id);
}

/** What a list of runs shows beyond their rows: the project's namespace and task counts. */
export interface RunFacts {
  namespace: string | null;
  /** Tasks: the definition's steps and any step it does not name (an external engine's); a cicd run is one. */
  tasksTotal: number;
  /** Tasks that ended (skipped and cancelled included). */
  tasksEnded: number;
  /** The values of the `derived` expressions, by name. */
  derived: Record<string, unknown>;
}

/** Facts of many runs in one statement; `derived` adds named SQL expressions over the run's columns (alias `r`). */
export async function runFacts(orm: MikroORM, ids: readonly string[], derived: Record<string, string> = {}): Promise<Map<string, RunFacts>> {
  if (!ids.length) return new Map();
  const names = Object.keys(derived);
  const rows = await sql<Record<string, unknown> & { id: string; namespace: string | null; tasks_total: number; tasks_ended: number }>(orm,
    `select r.id, p.namespace,
       case when r.execution_mode = 'cicd' then 1 else
         jsonb_array_length(coalesce(r.definition->'steps', '[]'::jsonb))
         + (select count(*) from step_runs s where s.run_id = r.id
             and not exists (select 1 from jsonb_array_elements(coalesce(r.definition->'steps', '[]'::jsonb)) d where d->>'ref' = s.step_ref)) end::int as tasks_total,
       case when r.execution_mode = 'cicd' then (case when r.status in (${sqlList(TERMINAL_RUN_STATUSES)}) then 1 else 0 end)
         else (select count(*) from step_runs s where s.run_id = r.id and s.status in (${sqlList(TERMINAL_STEP_STATUSES)})) end::int as tasks_ended
       ${names.map((n, i) => `, ${derived[n]} as d${i}`).join('')}
     from runs r left join projects p on p.repository_identifier = r.repository_identifier
     where r.id = any(?::uuid[])`, [[...ids]]);
  return new Map(rows.map((r) => [r.id, {
    namespace: r.namespace, tasksTotal: r.tasks_total, tasksEnded: r.tasks_ended,
    derived: Object.fromEntries(names.map((n, i) => [n, r[`d${i}`]])),
  }]));
}
