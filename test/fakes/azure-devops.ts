import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for one Azure DevOps organisation, answering what `azure-devops-node-api`
 * asks: location discovery (OPTIONS per area, ResourceAreas), work items (read, created and
 * updated with JSON Patch) and their revisions, comments, pipeline runs and build updates. It records every call, and — like a real
 * organisation with service hook subscriptions — posts events for every change (including the
 * ones Flowgate makes through the API) with the subscription's Basic credentials.
 */

export interface FakeIdentity {
  displayName: string;
  uniqueName: string;
  id: string;
}

export const identity = (uniqueName: string, displayName = uniqueName.split('@')[0]): FakeIdentity => ({ displayName, uniqueName, id: randomUUID() });

export interface RecordedCall {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  authorized: boolean;
  apiVersion?: string;
  at: number;
}

interface Revision {
  rev: number;
  fields: Record<string, unknown>;
}

interface WorkItem {
  id: number;
  project: string;
  revisions: Revision[];
}

export interface FakeComment {
  id: number;
  workItemId: number;
  text: string;
  createdBy: FakeIdentity;
  createdDate: string;
  version: number;
}

export interface FakePipeline {
  id: number;
  name: string;
  project: string;
  /** Template parameters the pipeline's YAML declares: others are refused (400), like Azure DevOps does. */
  parameters: string[];
  /** Variables settable at queue time: others are refused (400). */
  queueTimeVariables: string[];
}

export interface FakePipelineRun {
  id: number;
  pipelineId: number;
  project: string;
  name: string;
  state: 'inProgress' | 'canceling' | 'completed';
  result?: 'succeeded' | 'failed' | 'canceled';
  templateParameters: Record<string, string>;
  variables: Record<string, { value?: string; isSecret?: boolean }>;
  resources?: unknown;
  createdDate: string;
}

export type EventType = 'workitem.created' | 'workitem.updated' | 'workitem.commented' | 'ms.vss-pipelines.run-state-changed-event';

export interface Subscription {
  url: string;
  username: string;
  password: string;
  events: EventType[];
  /** What the event's `resource` holds: everything (default) or only ids. */
  resourceDetails?: 'all' | 'minimal';
}

export interface Delivery {
  event: Record<string, any>;
  status: number;
  body: string;
}

const GUID = {
  location: 'e81700f7-3be2-46de-8624-2eb35882fcaa',
  workItems: '72c7ddf8-2cdc-4f60-90cd-ab71c14a399b',
  createWorkItem: '62d3d110-0047-428c-ad3c-4fe872c91c74',
  revisions: 'a00c85a5-80fa-4565-99c3-bcd2181434bb',
  comments: '608aac0a-32e1-4493-a863-b9cf4566d257',
  runs: '7859261e-d2e9-4a68-b820-a5d84cc5bb3d',
  builds: '0cd358e1-9217-4d94-8269-1c1ee6f93dcf',
};

const location = (id: string, area: string, resourceName: string, routeTemplate: string, resourceVersion: number) =>
  ({ id, area, resourceName, routeTemplate, resourceVersion, minVersion: '1.0', maxVersion: '7.2', releasedVersion: '7.1' });

const LOCATIONS: Record<string, ReturnType<typeof location>[]> = {
  location: [location(GUID.location, 'Location', 'ResourceAreas', '_apis/{resource}/{areaId}', 1)],
  wit: [
    location(GUID.workItems, 'wit', 'workItems', '{project}/_apis/{area}/{resource}/{id}', 3),
    location(GUID.createWorkItem, 'wit', 'workItems', '{project}/_apis/{area}/workitems/${type}', 3),
    location(GUID.revisions, 'wit', 'revisions', '{project}/_apis/{area}/workItems/{id}/{resource}/{revisionNumber}', 3),
    location(GUID.comments, 'wit', 'comments', '{project}/_apis/{area}/workItems/{workItemId}/{resource}/{commentId}', 4),
  ],
  pipelines: [location(GUID.runs, 'pipelines', 'runs', '{project}/_apis/{area}/{pipelineId}/{resource}/{runId}', 1)],
  build: [location(GUID.builds, 'build', 'builds', '{project}/_apis/{area}/{resource}/{buildId}', 7)],
};

const adoError = (message: string) => ({ $id: '1', innerException: null, message, typeName: 'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistException', typeKey: 'Error', errorCode: 0, eventId: 3000 });

export class FakeAzureDevOps {
  readonly calls: RecordedCall[] = [];
  readonly deliveries: Delivery[] = [];
  readonly comments: FakeComment[] = [];
  readonly pipelineRuns: FakePipelineRun[] = [];
  readonly subscriptions: Subscription[] = [];
  /** Who the PAT belongs to: the author of Flowgate's comments. */
  readonly bot: FakeIdentity;
  private readonly workItems = new Map<number, WorkItem>();
  private readonly projectIds = new Map<string, string>();
  private readonly pipelines = new Map<number, FakePipeline>();
  /** Work item types of every project: creating another one is refused (404), as Azure DevOps does. */
  readonly workItemTypes = new Set(['Bug', 'Task', 'User Story', 'Feature', 'Epic', 'Issue', 'Incident']);
  private server?: http.Server;
  private inFlight = new Set<Promise<unknown>>();
  private nextWorkItemId = 100;
  private nextCommentId = 1000;
  private nextRunId = 5000;
  url = '';

  constructor(readonly org = 'acme', readonly token = 'fake-pat-0123456789', projects: string[] = ['proj'], bot = identity('flowgate-bot@acme.io', 'Flowgate Bot')) {
    for (const p of projects) this.projectIds.set(p, randomUUID());
    this.bot = bot;
  }

  /** The organisation URL Flowgate is configured with (AZURE_DEVOPS_ORG_URL). */
  get orgUrl(): string {
    return `${this.url}/${this.org}`;
  }

  projectId(name: string): string {
    return this.projectIds.get(name)!;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try { body = raw ? JSON.parse(raw) : undefined; } catch { body = raw; }
        const url = new URL(req.url ?? '/', 'http://fake');
        const accept = String(req.headers.accept ?? '');
        const call: RecordedCall = {
          method: req.method ?? '', path: url.pathname, query: url.searchParams, body, at: Date.now(),
          authorized: this.authorized(req.headers.authorization), apiVersion: /api-version=([^;,\s]+)/.exec(accept)?.[1],
        };
        this.calls.push(call);
        const answer = call.authorized ? this.route(call) : { status: 401, body: { message: 'TF400813: The user is not authorized to access this resource.' } };
        res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await this.settled();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Waits until every hook delivery under way has been answered. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  subscribe(sub: Subscription): void {
    this.subscriptions.push(sub);
  }

  addPipeline(p: Partial<FakePipeline> & { id: number; project?: string }): FakePipeline {
    const pipeline: FakePipeline = {
      name: `pipeline-${p.id}`, project: 'proj', parameters: ['flowgateExecutionId', 'flowgateUrl', 'flowgatePayload'], queueTimeVariables: ['FLOWGATE_TOKEN'], ...p,
    };
    this.pipelines.set(pipeline.id, pipeline);
    return pipeline;
  }

  /** The API calls of one kind (method and a path pattern), for assertions. */
  callsTo(method: string, pattern: RegExp): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && pattern.test(c.path));
  }

  commentsOn(workItemId: number): FakeComment[] {
    return this.comments.filter((c) => c.workItemId === workItemId);
  }

  /** Flowgate's comments on a work item (as plain text, oldest first). */
  botComments(workItemId: number): FakeComment[] {
    return this.commentsOn(workItemId).filter((c) => c.createdBy.uniqueName === this.bot.uniqueName);
  }

  workItem(id: number): { id: number; project: string; rev: number; fields: Record<string, unknown> } {
    const wi = this.workItems.get(id)!;
    const last = wi.revisions.at(-1)!;
    return { id, project: wi.project, rev: last.rev, fields: last.fields };
  }

  // ---- changes people make (each one notifies the subscriptions) ----------------------------

  createWorkItem(input: { project?: string; type: string; title: string; by: FakeIdentity; tags?: string[]; state?: string; description?: string; fields?: Record<string, unknown> }): number {
    const id = this.nextWorkItemId++;
    const project = input.project ?? 'proj';
    const now = new Date().toISOString();
    const fields: Record<string, unknown> = {
      'System.Id': id, 'System.Rev': 1, 'System.TeamProject': project, 'System.AreaPath': project, 'System.IterationPath': project,
      'System.WorkItemType': input.type, 'System.Title': input.title, 'System.State': input.state ?? 'New', 'System.Reason': 'New',
      'System.CreatedBy': input.by, 'System.ChangedBy': input.by, 'System.CreatedDate': now, 'System.ChangedDate': now,
      ...(input.tags?.length ? { 'System.Tags': input.tags.join('; ') } : {}),
      ...(input.description ? { 'System.Description': input.description } : {}),
      ...input.fields,
    };
    const wi: WorkItem = { id, project, revisions: [{ rev: 1, fields }] };
    this.workItems.set(id, wi);
    this.emit('workitem.created', () => this.workItemEvent('workitem.created', wi, 1, `${input.type} #${id} (${input.title}) created by ${input.by.displayName}`));
    return id;
  }

  /** A person edits fields (e.g. `System.State`, `System.Tags`); `history` is a discussion note made with the change. */
  updateWorkItem(id: number, changes: Record<string, unknown>, by: FakeIdentity, history?: string): number {
    const rev = this.revise(id, changes, by, history);
    const wi = this.workItems.get(id)!;
    // A note written with the change is a comment too (the discussion lists it).
    if (history) this.comments.push({ id: this.nextCommentId++, workItemId: id, text: history, createdBy: by, createdDate: new Date().toISOString(), version: 1 });
    this.emit('workitem.updated', () => this.updateEvent(wi, rev, by));
    if (history) this.emit('workitem.commented', () => this.workItemEvent('workitem.commented', wi, rev, `${wi.revisions.at(-1)!.fields['System.WorkItemType']} #${id} commented on by ${by.displayName}`));
    return rev;
  }

  setTags(id: number, tags: string[], by: FakeIdentity): number {
    return this.updateWorkItem(id, { 'System.Tags': tags.join('; ') }, by);
  }

  /** A person comments (HTML, as the web editor stores it). */
  comment(id: number, html: string, by: FakeIdentity): FakeComment {
    return this.addComment(id, html, by);
  }

  // ---- pipelines ----------------------------------------------------------------------------

  /** The pipeline run finishes (or starts, with `inProgress`): notifies run-state-changed subscriptions. */
  setRunState(runId: number, state: FakePipelineRun['state'], result?: FakePipelineRun['result']): void {
    const run = this.pipelineRuns.find((r) => r.id === runId)!;
    run.state = state;
    run.result = result;
    this.emit('ms.vss-pipelines.run-state-changed-event', () => this.runEvent(run));
  }

  /** Builds the event Azure DevOps would send for the run's current state (for manual posting). */
  runEvent(run: FakePipelineRun): Record<string, any> {
    const pipeline = this.pipelines.get(run.pipelineId)!;
    const runUrl = `${this.orgUrl}/${this.projectId(run.project)}/_apis/Pipelines/${run.pipelineId}/runs/${run.id}`;
    return {
      id: randomUUID(), eventType: 'ms.vss-pipelines.run-state-changed-event', publisherId: 'pipelines',
      message: { text: `Run ${run.name} ${run.state}${run.result ? ` (${run.result})` : ''}` },
      resource: {
        run: { id: run.id, name: run.name, state: run.state, result: run.result, url: runUrl, pipeline: { id: pipeline.id, name: pipeline.name } },
        pipeline: { id: pipeline.id, name: pipeline.name }, runId: run.id, pipelineId: pipeline.id, runUrl,
      },
      resourceVersion: '5.1-preview.1',
      resourceContainers: { project: { id: this.projectId(run.project) }, account: { id: randomUUID() } },
      createdDate: new Date().toISOString(),
    };
  }

  // ---- hooks ----------------------------------------------------------------------------------

  /** Posts an event as a subscription would (with its Basic credentials); answers the HTTP status. */
  async deliver(sub: Pick<Subscription, 'url' | 'username' | 'password'>, event: Record<string, any>): Promise<Delivery> {
    const res = await fetch(sub.url, {
      method: 'POST', body: JSON.stringify(event),
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Basic ${Buffer.from(`${sub.username}:${sub.password}`).toString('base64')}` },
    });
    const delivery = { event, status: res.status, body: await res.text() };
    this.deliveries.push(delivery);
    return delivery;
  }

  /** The events of one type sent so far (newest last). */
  sent(eventType: EventType, workItemId?: number): Delivery[] {
    return this.deliveries.filter((d) => d.event.eventType === eventType && (workItemId === undefined || d.event.resource?.workItemId === workItemId || d.event.resource?.id === workItemId));
  }

  private emit(eventType: EventType, build: () => Record<string, any>): void {
    for (const sub of this.subscriptions.filter((s) => s.events.includes(eventType))) {
      const event = build();
      if (sub.resourceDetails === 'minimal') event.resource = minimal(event.resource);
      const p = this.deliver(sub, event).catch(() => undefined).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  /** As hooks show identities: `Display Name <unique name>`. */
  private hookFields(fields: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v && typeof v === 'object' && 'uniqueName' in (v as object) ? `${(v as FakeIdentity).displayName} <${(v as FakeIdentity).uniqueName}>` : v]));
  }

  private workItemUrl(wi: WorkItem) {
    return `${this.orgUrl}/${this.projectId(wi.project)}/_apis/wit/workItems/${wi.id}`;
  }

  private workItemEvent(eventType: EventType, wi: WorkItem, rev: number, text: string): Record<string, any> {
    const r = wi.revisions.find((x) => x.rev === rev)!;
    return {
      id: randomUUID(), eventType, publisherId: 'tfs', message: { text },
      resource: { id: wi.id, rev, fields: this.hookFields(r.fields), url: this.workItemUrl(wi) },
      resourceVersion: '1.0',
      resourceContainers: { collection: { id: randomUUID() }, account: { id: randomUUID() }, project: { id: this.projectId(wi.project) } },
      createdDate: new Date().toISOString(),
    };
  }

  private updateEvent(wi: WorkItem, rev: number, by: FakeIdentity): Record<string, any> {
    const now = wi.revisions.find((x) => x.rev === rev)!;
    const before = wi.revisions.find((x) => x.rev === rev - 1)!;
    const changed: Record<string, { oldValue?: unknown; newValue?: unknown }> = {};
    for (const k of new Set([...Object.keys(now.fields), ...Object.keys(before.fields)])) {
      if (JSON.stringify(now.fields[k]) !== JSON.stringify(before.fields[k])) changed[k] = { oldValue: this.hookFields(before.fields)[k], newValue: this.hookFields(now.fields)[k] };
    }
    return {
      id: randomUUID(), eventType: 'workitem.updated', publisherId: 'tfs', message: { text: `Work item #${wi.id} updated by ${by.displayName}` },
      resource: {
        id: rev - 1, workItemId: wi.id, rev, revisedBy: { ...by, name: `${by.displayName} <${by.uniqueName}>` }, revisedDate: new Date().toISOString(), fields: changed,
        url: `${this.workItemUrl(wi)}/updates/${rev - 1}`, revision: { id: wi.id, rev, fields: this.hookFields(now.fields), url: `${this.workItemUrl(wi)}/revisions/${rev}` },
      },
      resourceVersion: '1.0',
      resourceContainers: { collection: { id: randomUUID() }, account: { id: randomUUID() }, project: { id: this.projectId(wi.project) } },
      createdDate: new Date().toISOString(),
    };
  }

  // ---- state ----------------------------------------------------------------------------------

  private revise(id: number, changes: Record<string, unknown>, by: FakeIdentity, history?: string): number {
    const wi = this.workItems.get(id)!;
    const last = wi.revisions.at(-1)!;
    const rev = last.rev + 1;
    const { 'System.History': _h, ...carried } = last.fields;
    const fields = { ...carried, ...changes, 'System.Rev': rev, 'System.ChangedBy': by, 'System.ChangedDate': new Date().toISOString(), ...(history ? { 'System.History': history } : {}) };
    wi.revisions.push({ rev, fields });
    return rev;
  }

  private addComment(id: number, text: string, by: FakeIdentity): FakeComment {
    const comment: FakeComment = { id: this.nextCommentId++, workItemId: id, text, createdBy: by, createdDate: new Date().toISOString(), version: 1 };
    this.comments.push(comment);
    const rev = this.revise(id, {}, by, text);
    const wi = this.workItems.get(id)!;
    this.emit('workitem.updated', () => this.updateEvent(wi, rev, by));
    this.emit('workitem.commented', () => this.workItemEvent('workitem.commented', wi, rev, `Work item #${id} commented on by ${by.displayName}`));
    return comment;
  }

  private authorized(header: string | undefined): boolean {
    const m = /^Basic (.+)$/.exec(header ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) === this.token;
  }

  private projectNamed(segment: string | undefined): string | undefined {
    if (!segment) return undefined;
    const s = decodeURIComponent(segment);
    for (const [name, guid] of this.projectIds) if (name.toLowerCase() === s.toLowerCase() || guid === s) return name;
    return undefined;
  }

  private presentComment(c: FakeComment) {
    return { workItemId: c.workItemId, id: c.id, version: c.version, text: c.text, createdBy: c.createdBy, createdDate: c.createdDate, modifiedBy: c.createdBy, modifiedDate: c.createdDate, url: `${this.orgUrl}/${this.projectId(this.workItems.get(c.workItemId)!.project)}/_apis/wit/workItems/${c.workItemId}/comments/${c.id}` };
  }

  /** A work item as the API answers a create or update: with its links (`html` is the web page). */
  private presentWorkItem(id: number) {
    const wi = this.workItems.get(id)!;
    const last = wi.revisions.at(-1)!;
    return {
      id, rev: last.rev, fields: last.fields, url: this.workItemUrl(wi),
      _links: { self: { href: this.workItemUrl(wi) }, html: { href: `${this.orgUrl}/${wi.project}/_workitems/edit/${id}` } },
    };
  }

  private presentRun(r: FakePipelineRun) {
    const pipeline = this.pipelines.get(r.pipelineId)!;
    const url = `${this.orgUrl}/${this.projectId(r.project)}/_apis/pipelines/${r.pipelineId}/runs/${r.id}`;
    return {
      _links: { web: { href: `${this.orgUrl}/${r.project}/_build/results?buildId=${r.id}` } }, templateParameters: r.templateParameters,
      pipeline: { id: pipeline.id, name: pipeline.name, folder: '\\', revision: 1, url }, state: r.state, result: r.result,
      createdDate: r.createdDate, url, id: r.id, name: r.name,
    };
  }

  private route(c: RecordedCall): { status: number; body?: unknown } {
    const prefix = `/${this.org}`;
    if (!c.path.startsWith(prefix)) return { status: 404, body: adoError(`No organisation at ${c.path}`) };
    const p = c.path.slice(prefix.length);
    let m: RegExpExecArray | null;

    if (c.method === 'OPTIONS' && (m = /^\/_apis\/(Location|wit|pipelines|build)$/i.exec(p))) {
      const value = LOCATIONS[m[1].toLowerCase()];
      return { status: 200, body: { count: value.length, value } };
    }
    if (c.method === 'GET' && /^\/_apis\/ResourceAreas\/?$/i.test(p)) return { status: 200, body: { count: 0, value: null } };

    if ((m = /^(?:\/([^/]+))?\/_apis\/wit\/workItems\/(\d+)(?:\/revisions\/(\d+))?$/i.exec(p)) && c.method === 'GET') {
      const wi = this.workItems.get(Number(m[2]));
      if (m[1] && !this.projectNamed(m[1])) return { status: 404, body: adoError(`TF200016: The project ${m[1]} does not exist.`) };
      if (!wi || (m[1] && this.projectNamed(m[1]) !== wi.project)) return { status: 404, body: adoError(`TF401232: Work item ${m[2]} does not exist, or you do not have permissions to read it.`) };
      const r = m[3] ? wi.revisions.find((x) => x.rev === Number(m![3])) : wi.revisions.at(-1);
      if (!r) return { status: 404, body: adoError(`Revision ${m[3]} of work item ${wi.id} does not exist.`) };
      return { status: 200, body: { id: wi.id, rev: r.rev, fields: r.fields, url: this.workItemUrl(wi) } };
    }

    if ((m = /^\/([^/]+)\/_apis\/wit\/workitems\/\$([^/]+)$/i.exec(p)) && c.method === 'POST') {
      const project = this.projectNamed(m[1]);
      if (!project) return { status: 404, body: adoError(`TF200016: The project ${m[1]} does not exist.`) };
      const type = decodeURIComponent(m[2]);
      if (!this.workItemTypes.has(type)) return { status: 404, body: adoError(`VS402323: Work item type ${type} does not exist in project ${project} or you do not have permission to access it.`) };
      const fields = patchFields(c.body);
      if (typeof fields === 'string') return { status: 400, body: adoError(fields) };
      const { 'System.Title': title, ...rest } = fields;
      if (typeof title !== 'string' || !title) return { status: 400, body: adoError("TF401320: Rule Error for field Title. Error code: Required, HasValues, LimitedToValues, AllowsOldValue, InvalidEmpty.") };
      const id = this.createWorkItem({ project, type, title, by: this.bot, fields: rest });
      return { status: 200, body: this.presentWorkItem(id) };
    }
    if ((m = /^\/([^/]+)\/_apis\/wit\/workItems\/(\d+)$/i.exec(p)) && c.method === 'PATCH') {
      const project = this.projectNamed(m[1]);
      const wi = this.workItems.get(Number(m[2]));
      if (!project || !wi || wi.project !== project) return { status: 404, body: adoError(`TF401232: Work item ${m[2]} does not exist, or you do not have permissions to read it.`) };
      const fields = patchFields(c.body);
      if (typeof fields === 'string') return { status: 400, body: adoError(fields) };
      this.updateWorkItem(wi.id, fields, this.bot);
      return { status: 200, body: this.presentWorkItem(wi.id) };
    }

    if ((m = /^\/([^/]+)\/_apis\/wit\/workItems\/(\d+)\/comments(?:\/(\d+))?$/i.exec(p))) {
      const project = this.projectNamed(m[1]);
      const wi = this.workItems.get(Number(m[2]));
      if (!project || !wi || wi.project !== project) return { status: 404, body: adoError(`TF401232: Work item ${m[2]} does not exist.`) };
      if (c.method === 'POST' && !m[3]) {
        const text = (c.body as { text?: unknown } | undefined)?.text;
        if (typeof text !== 'string' || !text) return { status: 400, body: adoError('The comment text is required.') };
        return { status: 200, body: this.presentComment(this.addComment(wi.id, text, this.bot)) };
      }
      if (c.method === 'GET' && m[3]) {
        const comment = this.comments.find((x) => x.id === Number(m![3]) && x.workItemId === wi.id);
        return comment ? { status: 200, body: this.presentComment(comment) } : { status: 404, body: adoError(`Comment ${m[3]} not found.`) };
      }
      if (c.method === 'GET') {
        const top = Number(c.query.get('$top') ?? 200);
        const ascending = /^(1|asc)$/i.test(c.query.get('order') ?? '');
        const ordered = ascending ? this.commentsOn(wi.id) : this.commentsOn(wi.id).slice().reverse();
        const list = ordered.slice(0, top).map((x) => this.presentComment(x));
        return { status: 200, body: { totalCount: this.commentsOn(wi.id).length, count: list.length, comments: list } };
      }
    }

    if ((m = /^\/([^/]+)\/_apis\/pipelines\/(\d+)\/runs(?:\/(\d+))?$/i.exec(p))) {
      const project = this.projectNamed(m[1]);
      const pipeline = this.pipelines.get(Number(m[2]));
      if (!project || !pipeline || pipeline.project !== project) return { status: 404, body: adoError(`Pipeline ${m[2]} not found.`) };
      if (c.method === 'POST' && !m[3]) {
        const b = (c.body ?? {}) as { templateParameters?: Record<string, string>; variables?: Record<string, { value?: string; isSecret?: boolean }>; resources?: unknown };
        const unexpected = Object.keys(b.templateParameters ?? {}).filter((k) => !pipeline.parameters.includes(k));
        if (unexpected.length) return { status: 400, body: adoError(`Unexpected parameter '${unexpected[0]}'`) };
        const notSettable = Object.keys(b.variables ?? {}).filter((k) => !pipeline.queueTimeVariables.includes(k));
        if (notSettable.length) return { status: 400, body: adoError(`You can't set the following variables (${notSettable.join(', ')}). If you want to be able to set these variables, then edit the pipeline and select Settable at queue time on the variables tab of the pipeline editor.`) };
        const run: FakePipelineRun = {
          id: this.nextRunId++, pipelineId: pipeline.id, project, name: `20261122.${this.pipelineRuns.length + 1}`, state: 'inProgress',
          templateParameters: b.templateParameters ?? {}, variables: b.variables ?? {}, resources: b.resources, createdDate: new Date().toISOString(),
        };
        this.pipelineRuns.push(run);
        this.emit('ms.vss-pipelines.run-state-changed-event', () => this.runEvent(run));
        return { status: 200, body: this.presentRun(run) };
      }
      if (c.method === 'GET' && m[3]) {
        const run = this.pipelineRuns.find((r) => r.id === Number(m![3]) && r.pipelineId === pipeline.id);
        return run ? { status: 200, body: this.presentRun(run) } : { status: 404, body: adoError(`Run ${m[3]} not found.`) };
      }
    }

    if ((m = /^\/([^/]+)\/_apis\/build\/builds\/(\d+)$/i.exec(p)) && c.method === 'PATCH') {
      const project = this.projectNamed(m[1]);
      const run = this.pipelineRuns.find((r) => r.id === Number(m![2]) && r.project === project);
      if (!run) return { status: 404, body: adoError(`Build ${m[2]} not found.`) };
      const status = (c.body as { status?: unknown } | undefined)?.status;
      if (status === 4 || (typeof status === 'string' && status.toLowerCase() === 'cancelling')) {
        if (run.state !== 'completed') run.state = 'canceling';
      } else return { status: 400, body: adoError(`Unsupported build update ${JSON.stringify(c.body)}`) };
      return { status: 200, body: { id: run.id, buildNumber: run.name, status: run.state === 'canceling' ? 'cancelling' : 'completed', project: { id: this.projectId(project!), name: project } } };
    }

    return { status: 404, body: adoError(`The resource ${c.method} ${c.path} is not served by the fake.`) };
  }
}

/** The fields a JSON Patch document sets (`add`/`replace` on `/fields/<name>`), or why it is refused. */
function patchFields(body: unknown): Record<string, unknown> | string {
  if (!Array.isArray(body) || !body.length) return 'You must pass a valid patch document in the body of the request.';
  const fields: Record<string, unknown> = {};
  for (const op of body as { op?: unknown; path?: unknown; value?: unknown }[]) {
    const m = typeof op.path === 'string' ? /^\/fields\/([^/]+)$/.exec(op.path) : null;
    if ((op.op !== 'add' && op.op !== 'replace') || !m) return `The patch operation ${JSON.stringify(op)} is not supported by the fake.`;
    fields[m[1]] = op.value;
  }
  return fields;
}

function minimal(resource: Record<string, any>): Record<string, any> {
  if (resource.workItemId) return { id: resource.id, workItemId: resource.workItemId, rev: resource.rev, url: resource.url };
  if (resource.run) return { run: { id: resource.run.id, pipeline: { id: resource.run.pipeline.id } }, runId: resource.runId, pipelineId: resource.pipelineId };
  return { id: resource.id, url: resource.url };
}
