import * as azdev from 'azure-devops-node-api';
import type { IPipelinesApi } from 'azure-devops-node-api/PipelinesApi.js';
import type { IWorkItemTrackingApi } from 'azure-devops-node-api/WorkItemTrackingApi.js';
import { CommentSortOrder } from 'azure-devops-node-api/interfaces/WorkItemTrackingInterfaces.js';
import type { RunPipelineParameters } from 'azure-devops-node-api/interfaces/PipelinesInterfaces.js';
import type { AzureDevOpsSettings } from '../../config.js';
import { identityOf, type AdoIdentity } from './work-items.js';

/** A work item (or one revision of it) as Flowgate uses it: plain data, safe to record with a delivery. */
export interface WorkItemData {
  id: number;
  rev: number;
  fields: Record<string, unknown>;
  project: string;
  type: string;
  state: string;
  tags: string;
  createdBy?: AdoIdentity;
  changedBy?: AdoIdentity;
  history?: string;
}

export interface CommentData {
  id: number;
  text: string;
  createdBy?: AdoIdentity;
  createdDate?: string;
}

export interface PipelineRunData {
  id: number;
  pipelineId?: number;
  /** Pipelines `RunState`: inProgress, canceling, completed, unknown. */
  state: string;
  /** Pipelines `RunResult`: succeeded, failed, canceled, unknown. */
  result?: string;
  url?: string;
  templateParameters: Record<string, string>;
}

const RUN_STATE: Record<number, string> = { 0: 'unknown', 1: 'inProgress', 2: 'canceling', 4: 'completed' };
const RUN_RESULT: Record<number, string> = { 0: 'unknown', 1: 'succeeded', 2: 'failed', 4: 'canceled' };
const enumName = (table: Record<number, string>, v: unknown) => (typeof v === 'number' ? table[v] ?? String(v) : typeof v === 'string' ? v : undefined);

/** A failed call, described without credentials: what was done and what the server answered. */
export class AdoError extends Error {
  constructor(what: string, readonly status: number | undefined, cause: string) {
    super(`Azure DevOps: ${what} failed${status ? ` (HTTP ${status})` : ''}: ${cause}`);
    this.name = 'AdoError';
  }
}

export function workItemData(raw: { id?: number; rev?: number; fields?: Record<string, unknown> } | null | undefined): WorkItemData | undefined {
  if (!raw || typeof raw.id !== 'number') return undefined;
  const f = raw.fields ?? {};
  const str = (k: string) => (typeof f[k] === 'string' ? (f[k] as string) : '');
  return {
    id: raw.id,
    rev: typeof raw.rev === 'number' ? raw.rev : Number(f['System.Rev'] ?? 0),
    fields: f,
    project: str('System.TeamProject'),
    type: str('System.WorkItemType'),
    state: str('System.State'),
    tags: str('System.Tags'),
    createdBy: identityOf(f['System.CreatedBy']),
    changedBy: identityOf(f['System.ChangedBy']),
    history: str('System.History') || undefined,
  };
}

/**
 * The Azure DevOps REST API through `azure-devops-node-api`, for one organisation. The library
 * discovers each area's routes (OPTIONS) once per API object, so the API objects are kept.
 */
export class AdoClient {
  private readonly web: azdev.WebApi;
  private wit?: Promise<IWorkItemTrackingApi>;
  private pipelines?: Promise<IPipelinesApi>;
  /** Who Flowgate comments as (learned from the comments it adds). */
  botUniqueName?: string;

  private static readonly shared = new WeakMap<AzureDevOpsSettings, AdoClient>();

  constructor(readonly orgUrl: string, token: string) {
    this.web = new azdev.WebApi(orgUrl, azdev.getPersonalAccessTokenHandler(token), { socketTimeout: 15_000 });
  }

  /** One client per configuration: the door and the plugins share its routes and who the bot is. */
  static for(settings: AzureDevOpsSettings): AdoClient {
    let client = AdoClient.shared.get(settings);
    if (!client) AdoClient.shared.set(settings, (client = new AdoClient(settings.orgUrl, settings.token)));
    return client;
  }

  private witApi(): Promise<IWorkItemTrackingApi> {
    return (this.wit ??= this.web.getWorkItemTrackingApi().catch((err) => { this.wit = undefined; throw err; }));
  }

  private pipelinesApi(): Promise<IPipelinesApi> {
    return (this.pipelines ??= this.web.getPipelinesApi().catch((err) => { this.pipelines = undefined; throw err; }));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { statusCode?: number; message?: string; code?: string };
      throw new AdoError(what, e.statusCode, e.code ?? e.message ?? String(err));
    }
  }

  /** The work item as it is now; undefined when it does not exist (or this token may not see it). */
  async workItem(id: number, project?: string): Promise<WorkItemData | undefined> {
    return workItemData(await this.call(`reading work item ${id}`, async () => (await this.witApi()).getWorkItem(id, undefined, undefined, undefined, project)));
  }

  async revision(id: number, rev: number, project?: string): Promise<WorkItemData | undefined> {
    return workItemData(await this.call(`reading revision ${rev} of work item ${id}`, async () => (await this.witApi()).getRevision(id, rev, undefined, project)));
  }

  /** The newest comments (up to 200), newest first. */
  async comments(project: string, workItemId: number): Promise<CommentData[]> {
    const list = await this.call(`reading the comments of work item ${workItemId}`, async () =>
      (await this.witApi()).getComments(project, workItemId, 200, undefined, false, undefined, CommentSortOrder.Desc));
    return (list?.comments ?? [])
      .filter((c) => typeof c.id === 'number' && !c.isDeleted)
      .map((c) => ({ id: c.id!, text: c.text ?? '', createdBy: identityOf(c.createdBy), createdDate: c.createdDate ? new Date(c.createdDate).toISOString() : undefined }));
  }

  async addComment(project: string, workItemId: number, html: string): Promise<CommentData> {
    const c = await this.call(`commenting on work item ${workItemId}`, async () => (await this.witApi()).addComment({ text: html }, project, workItemId));
    if (!c || typeof c.id !== 'number') throw new AdoError(`commenting on work item ${workItemId}`, undefined, 'no comment in the answer');
    const createdBy = identityOf(c.createdBy);
    if (createdBy) this.botUniqueName = createdBy.uniqueName;
    return { id: c.id, text: c.text ?? html, createdBy };
  }

  /**
   * Creates a work item of `type` (no `id`) or updates one, setting fields by reference name
   * (`System.Title`, `System.State`, …). The library answers a 404 with null: undefined here.
   */
  async saveWorkItem(project: string, change: { id?: number; type?: string; fields: Record<string, unknown> }): Promise<(WorkItemData & { url?: string }) | undefined> {
    // JSON Patch as the REST API takes it (`op` spelled out).
    const document = Object.entries(change.fields).map(([field, value]) => ({ op: 'add', path: `/fields/${field}`, value }));
    const what = change.id === undefined ? `creating a ${change.type} in project ${project}` : `updating work item ${change.id}`;
    const raw = await this.call(what, async () => {
      const wit = await this.witApi();
      return change.id === undefined ? wit.createWorkItem(undefined, document as never, project, change.type!) : wit.updateWorkItem(undefined, document as never, change.id, project);
    });
    const data = workItemData(raw);
    return data && { ...data, url: (raw as { _links?: { html?: { href?: string } } })._links?.html?.href };
  }

  /** Queues a pipeline run (without waiting for it); undefined when the pipeline is not found. */
  async queuePipeline(project: string, pipelineId: number, parameters: RunPipelineParameters): Promise<PipelineRunData | undefined> {
    const run = await this.call(`queueing pipeline ${pipelineId}`, async () => (await this.pipelinesApi()).runPipeline(parameters, project, pipelineId));
    return run && typeof run.id === 'number' ? this.runData(run) : undefined;
  }

  async pipelineRun(project: string, pipelineId: number, runId: number): Promise<PipelineRunData | undefined> {
    const run = await this.call(`reading run ${runId} of pipeline ${pipelineId}`, async () => (await this.pipelinesApi()).getRun(project, pipelineId, runId));
    return run && typeof run.id === 'number' ? this.runData(run) : undefined;
  }

  private runData(run: { id?: number; pipeline?: { id?: number }; state?: unknown; result?: unknown; url?: string }): PipelineRunData {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries((run as { templateParameters?: Record<string, unknown> }).templateParameters ?? {})) if (typeof v === 'string') params[k] = v;
    const links = (run as { _links?: { web?: { href?: string } } })._links;
    return {
      id: run.id!, pipelineId: run.pipeline?.id, state: enumName(RUN_STATE, run.state) ?? 'unknown', result: enumName(RUN_RESULT, run.result),
      url: links?.web?.href ?? run.url, templateParameters: params,
    };
  }
}
