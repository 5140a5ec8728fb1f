import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { sql } from '../../db/sql.js';
import { conflict, invalidContent, notFound } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import { notifySql, type CacheInvalidation } from '../cache/invalidation.js';
import { isUuid, newId } from '../ids.js';
import type { Project } from '../../db/entities/project.js';
import type { ProjectService } from '../projects/projects.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import type { FlowRegistry } from '../registry/registry.js';
import { compileDocument, type CompiledDocument, type DocumentIssue } from './flow-document.js';

/** A stored flow document, with its namespace (its project's). */
export interface FlowDocument {
  id: string;
  repositoryIdentifier: string;
  namespace: string;
  name: string;
  description: string;
  yamlContent: string;
  revision: number;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string;
  updatedBy: string;
}

export interface FlowRevision {
  revision: number;
  flowId: string;
  yamlContent: string;
  createdAt: Date;
  createdBy: string;
  restoredFrom: number | null;
}

/** What goes with a flow besides its rows: its cron triggers' schedules (their rows go in the delete statement). */
export interface FlowDependents {
  dropSchedules(triggerIds: string[]): Promise<void>;
}

/** The newest revisions kept per flow. */
export const KEPT_REVISIONS = 500;
/** How often a replica checks the change counter, in case a notification was missed. */
const POLL_MS = 1_000;

interface DocumentRow {
  id: string; repository_identifier: string; namespace: string; name: string; description: string; yaml_content: string; definition: FlowDefinition;
  revision: number; created_at: Date; updated_at: Date; created_by: string; updated_by: string;
}

const SELECT = `select d.id, d.repository_identifier, p.namespace, d.name, d.description, d.yaml_content, d.definition, d.revision,
  d.created_at, d.updated_at, d.created_by, d.updated_by from flow_documents d join projects p on p.repository_identifier = d.repository_identifier`;

const toDocument = (r: DocumentRow): FlowDocument => ({
  id: r.id, repositoryIdentifier: r.repository_identifier, namespace: r.namespace, name: r.name, description: r.description, yamlContent: r.yaml_content,
  revision: r.revision, createdAt: r.created_at, updatedAt: r.updated_at, createdBy: r.created_by, updatedBy: r.updated_by,
});

/** The flow type a document is in the registry: `<namespace>:<name>`, run only in its project. */
const flowTypeOf = (r: DocumentRow): FlowDefinition => ({
  ...r.definition, id: `${r.namespace}:${r.name}`,
  document: { id: r.id, namespace: r.namespace, repositoryIdentifier: r.repository_identifier, revision: r.revision },
});

/** Refused content: 422 with every error and warning, by path. */
const invalid = (message: string, errors: DocumentIssue[], warnings: DocumentIssue[] = []) => invalidContent(message, { errors, warnings });

/**
 * Flow documents: YAML flows kept in PostgreSQL, compiled into the same flow types as manifest
 * files, with a revision for every change of their YAML. Every replica's registry follows them
 * (a notification per change, and a change counter read every second).
 */
export class FlowDocuments {
  private timer?: NodeJS.Timeout;
  private seen = '';

  constructor(
    private readonly orm: MikroORM,
    private readonly registry: FlowRegistry,
    private readonly projects: ProjectService,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly invalidation?: CacheInvalidation,
    private readonly dependents?: FlowDependents,
  ) {}

  /** Loads every document into the registry and follows changes. */
  async start(): Promise<void> {
    await this.reloadAll();
    this.invalidation?.subscribe('flow', {
      evict: (id) => void this.reload(id).catch((err) => this.log.warn({ err: (err as Error).message, flowId: id }, 'flow documents: reload failed')),
      clear: () => void this.reloadAll().catch((err) => this.log.warn({ err: (err as Error).message }, 'flow documents: reload failed')),
    });
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async version(): Promise<string> {
    const [v] = await sql<{ v: string }>(this.orm, `select (select last_value::text || ':' || is_called::text from flow_documents_version) || ':' || (select count(*) from flow_documents)::text as v`);
    return v.v;
  }

  private async poll(): Promise<void> {
    try {
      if ((await this.version()) !== this.seen) await this.reloadAll();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'flow documents: change check failed');
    }
  }

  private async reloadAll(): Promise<void> {
    const version = await this.version();
    const rows = await sql<DocumentRow>(this.orm, SELECT);
    this.registry.setDocuments(rows.map(flowTypeOf));
    this.seen = version;
  }

  private async reload(id: string): Promise<void> {
    const [row] = await sql<DocumentRow>(this.orm, `${SELECT} where d.id = ?`, [id]);
    if (row) this.registry.putDocument(flowTypeOf(row));
    else this.registry.dropDocument(id);
  }

  /** This process's registry follows at once; other replicas hear the statement's NOTIFY (its own echo reloads again, harmlessly). */
  private async afterChange(id: string): Promise<void> {
    await this.reload(id);
  }

  /** Documents of these projects (null: every project), by namespace then name. */
  async list(projects: readonly string[] | null): Promise<FlowDocument[]> {
    const rows = projects === null
      ? await sql<DocumentRow>(this.orm, `${SELECT} order by p.namespace, d.name`)
      : await sql<DocumentRow>(this.orm, `${SELECT} where d.repository_identifier = any(?::text[]) order by p.namespace, d.name`, [projects]);
    return rows.map(toDocument);
  }

  async find(id: string): Promise<FlowDocument | null> {
    if (!isUuid(id)) return null;
    const [row] = await sql<DocumentRow>(this.orm, `${SELECT} where d.id = ?`, [id]);
    return row ? toDocument(row) : null;
  }

  /** Checks YAML as create would (namespace given or in the YAML, when known): never throws for content. */
  check(yamlContent: string): CompiledDocument {
    return compileDocument(yamlContent);
  }

  /**
   * Creates a document in a project; `body` copies of the YAML's name, namespace and description
   * must agree with it. Returns the stored document.
   */
  async create(input: { yamlContent: string; project: Project; name?: string; description?: string }, actor: Actor, action: 'flow.created' | 'flow.imported' = 'flow.created'): Promise<FlowDocument> {
    const c = this.compiled(input.yamlContent, input.project, input);
    const id = newId();
    try {
      await sql(this.orm,
        `with d as (insert into flow_documents (id, repository_identifier, name, description, yaml_content, definition, revision, created_by, updated_by)
           values (?, ?, ?, ?, ?, ?::jsonb, 1, ?, ?) returning id, yaml_content, created_by),
         r as (insert into flow_revisions (flow_id, revision, yaml_content, created_by) select id, 1, yaml_content, created_by from d)
         select nextval('flow_documents_version'), ${notifySql('flow', 'd.id::text')} from d`,
        [id, input.project.repositoryIdentifier, c.name, c.description, input.yamlContent, JSON.stringify(c.definition), actor.name, actor.name]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`A flow named ${c.name} already exists in namespace ${input.project.namespace}`);
      throw err;
    }
    await this.afterChange(id);
    await this.audit.record(actor, action, 'flow', id, { name: c.name, namespace: input.project.namespace, revision: 1 });
    return (await this.find(id))!;
  }

  /**
   * Replaces a document's YAML: a new revision when it changed (none when it is the same), under an
   * optional expected revision (409 when stale). The YAML may rename the flow, not move it.
   */
  async update(doc: FlowDocument, yamlContent: string, expectedRevision: number | undefined, actor: Actor,
    how: { action: 'flow.updated' | 'flow.restored' | 'flow.imported'; restoredFrom?: number } = { action: 'flow.updated' }): Promise<FlowDocument> {
    if (expectedRevision !== undefined && expectedRevision !== doc.revision)
      throw conflict(`flow ${doc.id} is at revision ${doc.revision}, not ${expectedRevision}`, { revision: doc.revision });
    const project = await this.projects.get(doc.repositoryIdentifier);
    const c = this.compiled(yamlContent, project, {});
    if (yamlContent === doc.yamlContent) return doc;
    let rows;
    try {
      rows = await sql<{ revision: number }>(this.orm,
        `with u as (update flow_documents set name = ?, description = ?, yaml_content = ?, definition = ?::jsonb, revision = revision + 1, updated_at = now(), updated_by = ?
             where id = ? and revision = ? returning id, revision, yaml_content, updated_by),
           r as (insert into flow_revisions (flow_id, revision, yaml_content, created_by, restored_from) select id, revision, yaml_content, updated_by, ?::int from u),
           pruned as (delete from flow_revisions where flow_id = ? and revision <= (select revision - ? from u))
         select u.revision, nextval('flow_documents_version'), ${notifySql('flow', 'u.id::text')} from u`,
        [c.name, c.description, yamlContent, JSON.stringify(c.definition), actor.name, doc.id, doc.revision, how.restoredFrom ?? null, doc.id, KEPT_REVISIONS]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`A flow named ${c.name} already exists in namespace ${project.namespace}`);
      throw err;
    }
    if (!rows.length) {
      const now = await this.find(doc.id);
      if (!now) throw notFound(`No flow ${doc.id}`);
      throw conflict(`flow ${doc.id} changed meanwhile: it is at revision ${now.revision}`, { revision: now.revision });
    }
    await this.afterChange(doc.id);
    await this.audit.record(actor, how.action, 'flow', doc.id, { name: c.name, namespace: project.namespace, revision: rows[0].revision, ...(how.restoredFrom ? { restoredFrom: how.restoredFrom } : {}) });
    return (await this.find(doc.id))!;
  }

  /**
   * Deletes a document with its revisions and triggers (their webhook keys stop answering with the
   * statement; the foreign key cascades too); runs already started keep their snapshot.
   */
  async delete(doc: FlowDocument, actor: Actor): Promise<void> {
    const rows = await sql<{ cron_triggers: string[] }>(this.orm,
      `with d as (delete from flow_documents where id = ? returning id),
         t as (delete from triggers where flow_document_id in (select id from d) returning id, type)
       select nextval('flow_documents_version'), ${notifySql('flow', 'd.id::text')}, array(select id::text from t where type = 'cron') as cron_triggers from d`, [doc.id]);
    if (!rows.length) throw notFound(`No flow ${doc.id}`);
    await this.afterChange(doc.id);
    await this.dependents?.dropSchedules(rows[0].cron_triggers);
    await this.audit.record(actor, 'flow.deleted', 'flow', doc.id, { name: doc.name, namespace: doc.namespace, revision: doc.revision });
  }

  /** Newest first. */
  async revisions(flowId: string): Promise<FlowRevision[]> {
    const rows = await sql<{ revision: number; flow_id: string; yaml_content: string; created_at: Date; created_by: string; restored_from: number | null }>(this.orm,
      'select revision, flow_id, yaml_content, created_at, created_by, restored_from from flow_revisions where flow_id = ? order by revision desc', [flowId]);
    return rows.map((r) => ({ revision: r.revision, flowId: r.flow_id, yamlContent: r.yaml_content, createdAt: r.created_at, createdBy: r.created_by, restoredFrom: r.restored_from }));
  }

  async revision(flowId: string, revision: number): Promise<FlowRevision | null> {
    return (await this.revisions(flowId)).find((r) => r.revision === revision) ?? null;
  }

  /** Makes an earlier revision's YAML current again, as a new revision (none if it is the current content). */
  async restore(doc: FlowDocument, revision: number, actor: Actor): Promise<FlowDocument> {
    const old = await this.revision(doc.id, revision);
    if (!old) throw notFound(`flow ${doc.id} has no revision ${revision}`);
    return this.update(doc, old.yamlContent, undefined, actor, { action: 'flow.restored', restoredFrom: revision });
  }

  /** Compiles YAML for a project; refuses invalid content, a name or namespace that disagrees, with 422. */
  private compiled(yamlContent: string, project: Project, copies: { name?: string; description?: string }): CompiledDocument & { name: string; definition: FlowDefinition } {
    const c = compileDocument(yamlContent);
    const errors = [...c.errors];
    if (c.namespace !== undefined && c.namespace !== project.namespace)
      errors.push({ path: 'namespace', message: `the YAML says namespace ${c.namespace}, the flow is in ${project.namespace}` });
    if (copies.name !== undefined && c.name !== undefined && copies.name !== c.name)
      errors.push({ path: 'name', message: `the body says ${copies.name}, the YAML ${c.name}: they must agree` });
    if (copies.description !== undefined && copies.description !== c.description)
      errors.push({ path: 'description', message: 'the body\'s description must equal the YAML\'s' });
    if (errors.length || !c.definition || !c.name) throw invalid(`the flow document is not valid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors, c.warnings);
    return c as CompiledDocument & { name: string; definition: FlowDefinition };
  }
}
