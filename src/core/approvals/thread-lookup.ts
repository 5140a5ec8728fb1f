import type { MikroORM } from '@mikro-orm/postgresql';
import { Approval } from '../../db/entities/approval.js';
import { Run } from '../../db/entities/run.js';
import { sql } from '../../db/sql.js';
import type { ProjectService } from '../projects/projects.js';

/**
 * A conversation a door talks in. A thread belongs to projects, and a command in it only ever
 * touches approvals and runs of those projects, whatever coordinates a callback claimed.
 */
export type ThreadRef =
  /** An issue or pull request: the repository's project. */
  | { kind: 'github'; repositoryIdentifier: string; issueNumber: number }
  /** A run card's thread: the project of the run the card heads, else the project whose channel it is. */
  | { kind: 'slack'; channel: string; threadTs: string }
  /** A work item: the Flowgate projects of its Azure DevOps project (`org/<project>/*`), as the door found them. */
  | { kind: 'azureDevOps'; workItemId: number; repositoryIdentifiers: string[] };

const ORDER = `order by (status = 'pending') desc, requested_at desc, id`;
const LIMIT = 50;

/** Approvals and runs of a thread: the one query every door (and the REST lookups) use. */
export class ThreadLookup {
  constructor(private readonly orm: MikroORM, private readonly projects: ProjectService) {}

  /** The projects a thread belongs to. */
  async projectsOf(t: ThreadRef): Promise<string[]> {
    if (t.kind === 'github') return [t.repositoryIdentifier];
    if (t.kind === 'azureDevOps') return t.repositoryIdentifiers;
    // The first run posted to the thread is the one whose card heads it (a card exists before its run starts).
    const [root] = await sql<{ repository_identifier: string }>(this.orm,
      `select repository_identifier from runs
       where callback->>'type' = 'slack' and parent_run_id is null and callback->'slack'->>'channel' = ? and callback->'slack'->>'threadTs' = ?
       order by created_at, id limit 1`, [t.channel, t.threadTs]);
    if (root) return [root.repository_identifier];
    return (await this.projects.list(null)).filter((p) => p.slackChannel === t.channel).map((p) => p.repositoryIdentifier);
  }

  /** The thread's approvals of its own projects: pending first, then newest first. */
  async approvals(t: ThreadRef): Promise<Approval[]> {
    const projects = await this.projectsOf(t);
    if (!projects.length) return [];
    const rows = t.kind === 'github'
      ? await sql<{ id: string }>(this.orm,
        `select id from approvals where chat->'github'->>'repositoryIdentifier' = ? and (chat->'github'->>'issueNumber') = ? and repository_identifier = any(?::text[]) ${ORDER} limit ${LIMIT}`,
        [t.repositoryIdentifier, String(t.issueNumber), projects])
      : t.kind === 'slack'
        ? await sql<{ id: string }>(this.orm,
          `select id from approvals where chat->'slack'->>'channel' = ? and chat->'slack'->>'threadTs' = ? and repository_identifier = any(?::text[]) ${ORDER} limit ${LIMIT}`,
          [t.channel, t.threadTs, projects])
        : await sql<{ id: string }>(this.orm,
          `select id from approvals where chat->'azureDevOps'->>'repositoryIdentifier' = any(?::text[]) and (chat->'azureDevOps'->>'workItemId') = ? and repository_identifier = any(?::text[]) ${ORDER} limit ${LIMIT}`,
          [projects, String(t.workItemId), projects]);
    return inOrder(rows.map((r) => r.id), await this.orm.em.fork().find(Approval, { id: { $in: rows.map((r) => r.id) } }));
  }

  /**
   * The thread's runs: those started from it (newest first), then the runs of its approvals that
   * were not (newest first) — e.g. the children of an orchestrator, which share its thread.
   */
  async runs(t: ThreadRef): Promise<Run[]> {
    const projects = await this.projectsOf(t);
    if (!projects.length) return [];
    const rows = t.kind === 'slack'
      ? await sql<{ id: string }>(this.orm,
        `select id from runs where callback->>'type' = 'slack' and parent_run_id is null and callback->'slack'->>'channel' = ? and callback->'slack'->>'threadTs' = ?
         and repository_identifier = any(?::text[]) order by created_at desc, id limit ${LIMIT}`, [t.channel, t.threadTs, projects])
      : await sql<{ id: string }>(this.orm,
        `select id from runs where repository_identifier = any(?::text[]) and work_item_ref->>'key' = ? and work_item_ref->>'type' = any(?::text[])
         order by created_at desc, id limit ${LIMIT}`,
        [projects, String(t.kind === 'github' ? t.issueNumber : t.workItemId), t.kind === 'github' ? ['github-issue', 'github-pr'] : ['ado-workitem']]);
    const started = rows.map((r) => r.id);
    const others = [...new Set((await this.approvals(t)).map((a) => a.runId).filter((id): id is string => !!id && !started.includes(id)))];
    const [own, viaApprovals] = await Promise.all([
      started.length ? this.orm.em.fork().find(Run, { id: { $in: started } }) : [],
      others.length ? this.orm.em.fork().find(Run, { id: { $in: others } }, { orderBy: { createdAt: 'desc' } }) : [],
    ]);
    return [...inOrder(started, own), ...viaApprovals];
  }
}

function inOrder<T extends { id: string }>(ids: string[], items: T[]): T[] {
  const byId = new Map(items.map((x) => [x.id, x]));
  return ids.map((id) => byId.get(id)).filter((x): x is T => !!x);
}
