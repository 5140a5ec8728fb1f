import type { MikroORM } from '@mikro-orm/postgresql';
import { isTerminalRun, type RunStatus } from '../status.js';

/** A run of a log tree (a run and its descendants), as read in one statement. */
export interface LogRun {
  id: string;
  parentRunId: string | null;
  taskType: string;
  status: RunStatus;
  /** The run's last assigned log seq when read: every line up to it is committed and visible. */
  logSeq: number;
}

/**
 * The run and all its descendants in pre-order (children by creation time), read in one
 * statement so statuses and log counters form one snapshot.
 */
export async function loadLogTree(orm: MikroORM, rootId: string): Promise<LogRun[]> {
  const rows = await orm.em.fork().getConnection().execute<Record<string, any>[]>(
    `with recursive tree as (
       select id, parent_run_id, task_type, status, log_seq, created_at from runs where id = ?
       union all
       select r.id, r.parent_run_id, r.task_type, r.status, r.log_seq, r.created_at
       from runs r join tree t on r.parent_run_id = t.id)
     select * from tree order by created_at, id`, [rootId]);
  const nodes = rows.map((r): LogRun => ({
    id: r.id, parentRunId: r.parent_run_id, taskType: r.task_type, status: r.status, logSeq: Number(r.log_seq),
  }));
  const byParent = new Map<string | null, LogRun[]>();
  for (const n of nodes) {
    if (n.id === rootId) continue;
    if (!byParent.has(n.parentRunId)) byParent.set(n.parentRunId, []);
    byParent.get(n.parentRunId)!.push(n);
  }
  const out: LogRun[] = [];
  const visit = (n: LogRun) => { out.push(n); for (const c of byParent.get(n.id) ?? []) visit(c); };
  const root = nodes.find((n) => n.id === rootId);
  if (root) visit(root);
  return out;
}

export const allTerminal = (runs: LogRun[]) => runs.every((r) => isTerminalRun(r.status));
