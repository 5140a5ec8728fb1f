import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { listRunIds, type RunCondition } from '../core/runs/run-list-query.js';
import { runsInOrder } from '../core/runs/run-page-query.js';
import type { RunStatus } from '../core/status.js';
import type { Run } from '../db/entities/run.js';

export interface RunsFilter {
  status: RunStatus[];
  flow?: string;
  project?: string;
  requester?: string;
  door?: string;
  since?: Date;
  until?: Date;
  before?: string;
}

export const PAGE_SIZE = 50;

/** A page of runs the viewer may see, newest first, with the URL filters applied; `next` pages on. */
export async function runsPage(s: Services, viewer: ConsoleIdentity, f: RunsFilter): Promise<{ runs: Run[]; next: string | null }> {
  const visible = viewer.principal.projects;
  const projects = f.project ? (visible === null || visible.includes(f.project) ? [f.project] : []) : visible;
  const conditions: RunCondition[] = [];
  if (f.requester) conditions.push({ sql: 'lower(triggered_by) = ?', params: [f.requester.toLowerCase()] });
  if (f.door) conditions.push({ sql: "coalesce(callback->>'type', 'none') = ?", params: [f.door === 'rest' ? 'none' : f.door] });
  if (f.until) conditions.push({ sql: 'created_at < ?', params: [f.until] });
  const ids = await listRunIds(s.orm, {
    projects, statuses: f.status, taskTypes: f.flow ? [f.flow] : undefined, since: f.since, beforeId: f.before, conditions, offset: 0, limit: PAGE_SIZE + 1,
  });
  const runs = await runsInOrder(s.orm, ids.slice(0, PAGE_SIZE));
  return { runs, next: ids.length > PAGE_SIZE ? runs.at(-1)!.id : null };
}
