import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Service hooks carry no signature: a subscription sends HTTP Basic credentials, compared here
 * in constant time (both user and password are always compared, on their hashes, so neither
 * the position of a difference nor the lengths leak).
 */
export function basicAuthMatches(header: string | undefined, user: string, password: string): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  let givenUser = '';
  let givenPassword = '';
  let ok = Boolean(m);
  if (m) {
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) ok = false;
    else {
      givenUser = decoded.slice(0, colon);
      givenPassword = decoded.slice(colon + 1);
    }
  }
  const same = (a: string, b: string) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
  const userOk = same(givenUser, user);
  const passwordOk = same(givenPassword, password);
  return ok && userOk && passwordOk;
}

export const WORK_ITEM_EVENTS = ['workitem.created', 'workitem.updated', 'workitem.commented'] as const;
export const PIPELINE_RUN_EVENT = 'ms.vss-pipelines.run-state-changed-event';

/**
 * What Flowgate keeps of a service hook event: only where to look. Everything acted on is
 * re-read through the API, so Azure DevOps' own permissions and data apply, not the body's.
 */
export type HookEvent =
  | { kind: 'workitem'; eventType: (typeof WORK_ITEM_EVENTS)[number]; workItemId: number; rev?: number; project?: string }
  | { kind: 'pipeline-run'; runId: number; pipelineId: number; project: string };

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
};
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** `…/{org}/{project}/_apis/…` → `{project}` (a name or an id), if the URL has one. */
function projectInUrl(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const m = /\/([^/]+)\/_apis\//.exec(url.replace(/^https?:\/\/[^/]+/, ''));
  return m && m.index > 0 ? decodeURIComponent(m[1]) : undefined;
}

/** The event's id, type and where to look; a message when it is not a service hook event Flowgate acts on. */
export function parseHook(body: unknown): { id: string; event: HookEvent } | { id?: string; ignored: string } | { invalid: string } {
  const b = obj(body);
  const id = typeof b.id === 'string' && b.id.trim() ? b.id.trim() : undefined;
  const eventType = typeof b.eventType === 'string' ? b.eventType : undefined;
  if (!id || id.length > 200) return { invalid: 'id: required, the event id (at most 200 characters)' };
  if (!eventType) return { invalid: 'eventType: required' };
  const resource = obj(b.resource);
  const containers = obj(b.resourceContainers);
  const projectId = typeof obj(containers.project).id === 'string' ? (obj(containers.project).id as string) : undefined;
  if ((WORK_ITEM_EVENTS as readonly string[]).includes(eventType)) {
    // workitem.updated: the resource is an update (`workItemId`, `rev`, `revision`); the others: the work item.
    const revision = obj(resource.revision);
    const workItemId = eventType === 'workitem.updated' ? num(resource.workItemId) ?? num(revision.id) : num(resource.id);
    if (!workItemId) return { invalid: 'resource: no work item id' };
    const rev = num(resource.rev) ?? num(revision.rev);
    const fields = obj(eventType === 'workitem.updated' ? revision.fields : resource.fields);
    const project = (typeof fields['System.TeamProject'] === 'string' ? (fields['System.TeamProject'] as string) : undefined) ?? projectId ?? projectInUrl(resource.url);
    return { id, event: { kind: 'workitem', eventType: eventType as (typeof WORK_ITEM_EVENTS)[number], workItemId, ...(rev ? { rev } : {}), ...(project ? { project } : {}) } };
  }
  if (eventType === PIPELINE_RUN_EVENT) {
    const run = obj(resource.run);
    const runId = num(run.id) ?? num(resource.runId);
    const pipelineId = num(obj(resource.pipeline).id) ?? num(obj(run.pipeline).id) ?? num(resource.pipelineId);
    const project = projectId ?? projectInUrl(run.url) ?? projectInUrl(resource.runUrl);
    if (!runId || !pipelineId || !project) return { invalid: 'resource: no pipeline run id, pipeline id or project' };
    return { id, event: { kind: 'pipeline-run', runId, pipelineId, project } };
  }
  return { id, ignored: `event type ${eventType} is not acted on` };
}
