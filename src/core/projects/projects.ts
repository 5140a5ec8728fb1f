import { LockMode, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';
import { Project, type Provider, type WorkItemFlows } from '../../db/entities/project.js';
import { sql } from '../../db/sql.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import type { AuditLog, Actor } from '../audit/audit-log.js';
import type { FlowRegistry } from '../registry/registry.js';
import { notifySql, type CacheInvalidation } from '../cache/invalidation.js';
import { TtlCache } from '../cache/ttl-cache.js';

export interface ProjectInput {
  provider: Provider;
  owners: string[];
  members: string[];
  slackChannel?: string | null;
  /** Replaces the project's webhook signing secret when given; kept otherwise. */
  webhookSecret?: string;
  /** Replaces the project's work-item → flow mapping (Azure DevOps) when given; kept otherwise. */
  workItemFlows?: WorkItemFlows;
  /** Replaces the project's issue label → flow mapping (GitHub) when given; kept otherwise. */
  labelFlows?: Record<string, string>;
  /** Replaces the project's approver groups (name → emails) when given; kept otherwise. */
  approverGroups?: Record<string, string[]>;
  /** The project's namespace; a new project gets its default (see defaultNamespace), an existing one keeps its own. */
  namespace?: string;
}

/** What a namespace may be called. */
export const NAMESPACE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A project's namespace unless one is chosen: `acme/app` → `acme.app` (other characters → `-`). */
export function defaultNamespace(repositoryIdentifier: string): string {
  const base = repositoryIdentifier.toLowerCase().replaceAll('/', '.').replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 56);
  return base || 'p';
}

interface ProjectRow {
  repository_identifier: string; namespace: string; provider: Project['provider']; owners: string[]; members: string[];
  slack_channel: string | null; settings: Project['settings']; created_at: string; updated_at: string;
}

export interface ProjectCacheOptions {
  invalidation: CacheInvalidation;
  ttlMs: number;
}

/** A project read from its row; every call its own copy. */
const toProject = (row: ProjectRow): Project => Object.assign(new Project(), {
  repositoryIdentifier: row.repository_identifier, namespace: row.namespace, provider: row.provider, owners: [...row.owners], members: [...row.members],
  slackChannel: row.slack_channel, settings: structuredClone(row.settings), createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at),
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Registered projects and their per-project flow settings (disabled types, overrides). */
export class ProjectService {
  private readonly cache?: TtlCache<ProjectRow>;
  /** The frozen instance built for each cached row (see findShared). */
  private readonly shared = new WeakMap<ProjectRow, Project>();
  private readonly invalidation?: CacheInvalidation;

  constructor(private readonly orm: MikroORM, private readonly registry: FlowRegistry, private readonly audit: AuditLog, cache?: ProjectCacheOptions) {
    this.invalidation = cache?.invalidation;
    if (cache) this.cache = new TtlCache(cache.invalidation, { kind: 'project', ttlMs: cache.ttlMs });
  }

  /**
   * Read on every start and decision: cached (every write below tells every replica to forget the
   * project; see TtlCache for the bound), else plain SQL, not the ORM. Each call gets its own copy.
   */
  async find(repositoryIdentifier: string): Promise<Project | null> {
    const row = await this.row(repositoryIdentifier);
    return row ? toProject(row) : null;
  }

  /**
   * The same, as one frozen instance shared by every caller while the cache keeps its row: for the
   * hot paths that only read it (every start, every claim), which spent 3 % of the intake's CPU
   * building copies. Changing it throws.
   */
  async findShared(repositoryIdentifier: string): Promise<Readonly<Project> | null> {
    const row = await this.row(repositoryIdentifier);
    if (!row) return null;
    let project = this.shared.get(row);
    if (!project) this.shared.set(row, (project = deepFreeze(toProject(row))));
    return project;
  }

  private row(repositoryIdentifier: string): Promise<ProjectRow | undefined> {
    return this.cache ? this.cache.get(repositoryIdentifier, () => this.read(repositoryIdentifier)) : this.read(repositoryIdentifier);
  }

  private async read(repositoryIdentifier: string): Promise<ProjectRow | undefined> {
    const [row] = await sql<ProjectRow>(this.orm,
      'select repository_identifier, namespace, provider, owners, members, slack_channel, settings, created_at, updated_at from projects where repository_identifier = ?', [repositoryIdentifier]);
    return row;
  }

  /** Inside a write's transaction: every replica forgets the project when it commits. */
  private announce(tx: { execute(sql: string, params: unknown[]): Promise<unknown> }, repositoryIdentifier: string): Promise<unknown> {
    return tx.execute(`select ${notifySql('project')}`, [repositoryIdentifier]);
  }

  /** After a write committed: this process forgets the project at once (its own notification comes later). */
  private forget(repositoryIdentifier: string): void {
    this.invalidation?.invalidate('project', repositoryIdentifier);
  }

  async get(repositoryIdentifier: string): Promise<Project> {
    const p = await this.find(repositoryIdentifier);
    if (!p) throw notFound(`Project ${repositoryIdentifier} not found`);
    return p;
  }

  list(only: string[] | null): Promise<Project[]> {
    const where = only === null ? {} : { repositoryIdentifier: { $in: only } };
    return this.orm.em.fork().find(Project, where, { orderBy: { repositoryIdentifier: 'asc' } });
  }

  async upsert(repositoryIdentifier: string, input: ProjectInput, actor: Actor): Promise<{ project: Project; created: boolean }> {
    const { project, created } = await this.orm.em.fork().transactional(async (em) => {
      const result = await this.write(em, repositoryIdentifier, input);
      await this.announce(em, repositoryIdentifier);
      return result;
    });
    this.forget(repositoryIdentifier);
    const { webhookSecret, ...shown } = input;
    await this.audit.record(actor, created ? 'project.created' : 'project.updated', 'project', repositoryIdentifier, { ...shown, webhookSecretChanged: Boolean(webhookSecret) });
    return { project, created };
  }

  private async write(em: EntityManager, repositoryIdentifier: string, input: ProjectInput): Promise<{ project: Project; created: boolean }> {
    if (input.namespace) {
      const holder = await em.findOne(Project, { namespace: input.namespace, repositoryIdentifier: { $ne: repositoryIdentifier } });
      if (holder) throw conflict(`Namespace ${input.namespace} is already the namespace of project ${holder.repositoryIdentifier}`);
    }
    let project = await em.findOne(Project, { repositoryIdentifier });
    const created = !project;
    if (!project) {
      project = Object.assign(new Project(), { repositoryIdentifier, namespace: input.namespace ?? (await this.freeNamespace(em, repositoryIdentifier)) });
      em.persist(project);
    } else if (input.namespace && input.namespace !== project.namespace) {
      // Flow types (`<namespace>:<name>`) and their runs are named by it; triggers were made in it.
      const [{ holds }] = await em.getConnection().execute<{ holds: boolean }[]>('select exists (select 1 from flow_documents where repository_identifier = ?) or exists (select 1 from triggers where repository_identifier = ?) as holds', [repositoryIdentifier, repositoryIdentifier]);
      if (holds) throw conflict(`Namespace ${project.namespace} holds flows or triggers: it cannot be renamed`);
      project.namespace = input.namespace;
    }
    project.provider = input.provider;
    project.owners = input.owners.map((e) => e.toLowerCase());
    project.members = input.members.map((e) => e.toLowerCase());
    project.slackChannel = input.slackChannel ?? null;
    if (input.webhookSecret) project.settings = { ...project.settings, webhookSecret: input.webhookSecret };
    if (input.workItemFlows) {
      const unknown = [...Object.values(input.workItemFlows.byType ?? {}), ...Object.values(input.workItemFlows.byTag ?? {})].filter((t) => !this.registry.find(t));
      if (unknown.length) throw badRequest(`Unknown flow type(s) in workItemFlows: ${[...new Set(unknown)].join(', ')}`, [{ field: 'workItemFlows', message: `unknown flow type(s): ${[...new Set(unknown)].join(', ')}`, location: 'body' }]);
      project.settings = { ...project.settings, workItemFlows: input.workItemFlows };
    }
    if (input.labelFlows) {
      const unknown = Object.entries(input.labelFlows).filter(([, t]) => !this.registry.find(t));
      if (unknown.length) throw badRequest(`Unknown flow type(s) in labelFlows: ${unknown.map(([l, t]) => `${t} (label "${l}")`).join(', ')}`, unknown.map(([l, t]) => ({ field: `labelFlows.${l}`, message: `unknown flow type "${t}"`, location: 'body' as const })));
      project.settings = { ...project.settings, labelFlows: input.labelFlows };
    }
    if (input.approverGroups) {
      const groups = Object.fromEntries(Object.entries(input.approverGroups).map(([name, emails]) => [name, [...new Set(emails.map((e) => e.toLowerCase()))]]));
      project.settings = { ...project.settings, approverGroups: groups };
    }
    await em.flush();
    return { project, created };
  }

  /** The default namespace of a new project, or it with the first free `-<n>` suffix. */
  private async freeNamespace(em: EntityManager, repositoryIdentifier: string): Promise<string> {
    const base = defaultNamespace(repositoryIdentifier);
    const taken = new Set((await em.getConnection().execute<{ namespace: string }[]>(
      `select namespace from projects where namespace = ? or namespace like ?`, [base, `${base}-%`])).map((r) => r.namespace));
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
  }

  /** The project a namespace names, or null. */
  async byNamespace(namespace: string): Promise<Project | null> {
    const [row] = await sql<{ repository_identifier: string }>(this.orm, 'select repository_identifier from projects where namespace = ?', [namespace]);
    return row ? this.find(row.repository_identifier) : null;
  }

  async delete(repositoryIdentifier: string, actor: Actor): Promise<void> {
    // One statement: the delete and the notice to every replica, delivered when it commits.
    const removed = await sql(this.orm,
      `with gone as (delete from projects where repository_identifier = ? returning repository_identifier) select ${notifySql('project', 'gone.repository_identifier')} from gone`, [repositoryIdentifier]);
    this.forget(repositoryIdentifier);
    if (!removed.length) throw notFound(`Project ${repositoryIdentifier} not found`);
    await this.audit.record(actor, 'project.deleted', 'project', repositoryIdentifier);
  }

  async setEnabled(repositoryIdentifier: string, flowTypeId: string, enabled: boolean, actor: Actor): Promise<Project> {
    return this.updateSettings(repositoryIdentifier, actor, enabled ? 'flow_type.enabled' : 'flow_type.disabled', { flowTypeId }, (s) => {
      const disabled = new Set(s.disabledFlowTypes);
      if (enabled) disabled.delete(flowTypeId);
      else disabled.add(flowTypeId);
      s.disabledFlowTypes = [...disabled].sort();
    });
  }

  async setOverride(repositoryIdentifier: string, flowTypeId: string, overrideFlowTypeId: string, actor: Actor): Promise<Project> {
    if (!this.registry.find(overrideFlowTypeId))
      throw badRequest(`Unknown override flow type "${overrideFlowTypeId}"`, [{ field: 'overrideFlowTypeId', message: `unknown flow type "${overrideFlowTypeId}"`, location: 'body' }]);
    if (overrideFlowTypeId === flowTypeId)
      throw badRequest('A flow type cannot override itself', [{ field: 'overrideFlowTypeId', message: 'must differ from the overridden flow type', location: 'body' }]);
    return this.updateSettings(repositoryIdentifier, actor, 'flow_type.override_set', { flowTypeId, overrideFlowTypeId }, (s) => {
      s.overrides = { ...s.overrides, [flowTypeId]: overrideFlowTypeId };
    });
  }

  async removeOverride(repositoryIdentifier: string, flowTypeId: string, actor: Actor): Promise<Project> {
    return this.updateSettings(repositoryIdentifier, actor, 'flow_type.override_removed', { flowTypeId }, (s) => {
      const { [flowTypeId]: _removed, ...rest } = s.overrides;
      s.overrides = rest;
    });
  }

  private async updateSettings(
    repositoryIdentifier: string, actor: Actor, action: string, details: Record<string, unknown>,
    change: (s: Project['settings']) => void,
  ): Promise<Project> {
    const em = this.orm.em.fork();
    // Row lock: two concurrent toggles on one project must not lose each other's change.
    const project = await em.transactional(async (tx) => {
      const project = await tx.findOne(Project, { repositoryIdentifier }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!project) throw notFound(`Project ${repositoryIdentifier} not found`);
      const settings = { ...project.settings, disabledFlowTypes: [...(project.settings.disabledFlowTypes ?? [])], overrides: { ...(project.settings.overrides ?? {}) } };
      change(settings);
      project.settings = settings;
      await tx.flush();
      await this.announce(tx, repositoryIdentifier);
      await this.audit.record(actor, action, 'project', repositoryIdentifier, details);
      return project;
    });
    this.forget(repositoryIdentifier);
    return project;
  }
}

export const presentProject = (p: Project) => ({
  repositoryIdentifier: p.repositoryIdentifier,
  namespace: p.namespace,
  provider: p.provider,
  owners: p.owners,
  members: p.members,
  slackChannel: p.slackChannel ?? null,
  disabledFlowTypes: p.settings.disabledFlowTypes ?? [],
  overrides: p.settings.overrides ?? {},
  hasWebhookSecret: Boolean(p.settings.webhookSecret),
  workItemFlows: p.settings.workItemFlows ?? {},
  labelFlows: p.settings.labelFlows ?? {},
  approverGroups: p.settings.approverGroups ?? {},
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});
