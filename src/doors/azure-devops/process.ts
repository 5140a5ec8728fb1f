import { DBOS } from '@dbos-inc/dbos-sdk';
import type { AzureDevOpsSettings } from '../../config.js';
import type { Services } from '../../container.js';
import type { Person } from '../../core/approvals/approval-rules.js';
import type { StatusReport } from '../../core/cicd/cicd-store.js';
import { PIPELINE_PARAMETERS } from '../../core/cicd/azure-pipelines-dispatcher.js';
import { listRuns } from '../../core/runs/run-query.js';
import { isTerminalRun } from '../../core/status.js';
import { Project, type WorkItemFlows } from '../../db/entities/project.js';
import { Run, type Callback, type WorkItemRef } from '../../db/entities/run.js';
import { AppError } from '../../errors.js';
import { cancelForPerson, decideForPerson, describeRun, startRunForPerson } from '../actions.js';
import { HELP, parseComment, type Command } from '../commands.js';
import type { AdoClient, CommentData, WorkItemData } from './client.js';
import type { HookEvent } from './hooks.js';
import { htmlToText } from './html.js';
import { formatTime, renderRefusal, renderReply, renderRunStarted } from './render.js';
import { mappedFlows, paramsFromWorkItem, tagsOf, type AdoIdentity } from './work-items.js';

export const DOOR = 'azure-devops';

interface Deps { s: Services; client: AdoClient; settings: AzureDevOpsSettings; org: string }
let deps: Deps | undefined;
/** Hands the services to the durable processing; called when the door is created (before the engine launches). */
export function setAzureDevOpsDeps(d: Deps): void { deps = d; }
const d = (): Deps => {
  if (!deps) throw new Error('the Azure DevOps door is not configured');
  return deps;
};

/** Reads through the API retry on their own: a blip must not lose an event. */
const READ = { retriesAllowed: true, maxAttempts: 4, intervalSeconds: 1, backoffRate: 2 } as const;

// ---------------------------------------------------------------------------------------------
// Core calls: each runs in its own child workflow with a deterministic id, so the handler that
// waits for it records one outcome, and a recovered or redelivered event gets that same outcome.

type Act =
  | { kind: 'start'; key: string; flowType: string; params: Record<string, string>; repositoryIdentifier: string; person: Person; callback: Callback; workItemRef: WorkItemRef }
  | { kind: 'decide'; approvalId: string; person: Person; verdict: 'approve' | 'reject'; reason: string | null }
  | { kind: 'cancel'; runId: string; person: Person }
  | { kind: 'report'; runId: string; report: StatusReport };

type ActOutcome = { ok: true; runId?: string; taskType?: string; status?: string } | { ok: false; text: string };

async function actImpl(act: Act): Promise<ActOutcome> {
  const { s } = d();
  switch (act.kind) {
    case 'start': {
      const r = await startRunForPerson(s, {
        flowType: act.flowType, params: act.params, repositoryIdentifier: act.repositoryIdentifier, person: act.person,
        callback: act.callback, workItemRef: act.workItemRef, deliveryId: act.key, door: DOOR,
      });
      return r.ok ? { ok: true, runId: r.value.id, taskType: r.value.taskType, status: r.value.status } : r;
    }
    case 'decide': {
      const r = await decideForPerson(s, act.approvalId, act.person, act.verdict, act.reason, DOOR);
      if (r.ok) return { ok: true, status: r.value };
      // Already decided, and this person's own decision is among the decisions: a repeat, not a refusal.
      const a = await s.approvals.get(act.approvalId);
      if (a && a.decisions.some((x) => x.email === act.person.email.toLowerCase() && x.verdict === act.verdict)) return { ok: true, status: a.status };
      return r;
    }
    case 'cancel': {
      const run = await s.store.findById(act.runId);
      if (!run) return { ok: false, text: `Run ${act.runId} not found` };
      const r = await cancelForPerson(s, run, act.person, DOOR);
      return r.ok ? { ok: true, runId: run.id, taskType: run.taskType, status: 'cancelled' } : r;
    }
    case 'report': {
      const run = await s.store.findById(act.runId);
      if (!run) return { ok: false, text: `Run ${act.runId} not found` };
      try {
        const r = await s.cicd.report(run, act.report, { name: 'azure-pipelines', door: DOOR });
        return { ok: true, runId: run.id, status: r.status };
      } catch (err) {
        if (err instanceof AppError && err.status < 500) return { ok: false, text: err.message };
        throw err;
      }
    }
  }
}

const actWorkflow = DBOS.registerWorkflow(actImpl, { name: 'flowgate.azure-devops.act' });

async function act(id: string, a: Act): Promise<ActOutcome> {
  const handle = await DBOS.startWorkflow(actWorkflow, { workflowID: `azure-devops:${id}` })(a);
  return handle.getResult();
}

// ---------------------------------------------------------------------------------------------
// Reading: everything acted on comes from the API (and the database), inside checkpointed steps.

interface Candidate { repositoryIdentifier: string; workItemFlows?: WorkItemFlows }

interface PersonOrWhy { person?: Person; why?: string; uniqueName: string }

async function personOf(identity: AdoIdentity | undefined): Promise<PersonOrWhy> {
  if (!identity) return { uniqueName: '(unknown)', why: 'Azure DevOps did not say who made this change' };
  const linked = await d().s.identities.emailByAdo(identity.uniqueName);
  const email = linked ?? (/^[^@\s]+@[^@\s]+$/.test(identity.uniqueName) ? identity.uniqueName.toLowerCase() : undefined);
  if (!email)
    return { uniqueName: identity.uniqueName, why: `Azure DevOps user ${identity.uniqueName} is not linked to an email. A Flowgate owner can link it: PUT /api/v1/identities/{email} with {"adoUniqueName": "${identity.uniqueName}"}.` };
  return { uniqueName: identity.uniqueName, person: { email, name: identity.displayName || identity.uniqueName } };
}

const escapeLike = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Flowgate projects of an Azure DevOps project: the `org/project/*` ones. */
async function candidatesOf(adoProject: string): Promise<Candidate[]> {
  const { s, org } = d();
  const rows = await s.orm.em.fork().find(Project, { repositoryIdentifier: { $ilike: `${escapeLike(`${org}/${adoProject}/`)}%` } }, { orderBy: { repositoryIdentifier: 'asc' } });
  return rows.map((p) => ({ repositoryIdentifier: p.repositoryIdentifier, workItemFlows: p.settings.workItemFlows }));
}

/** The work item's Flowgate project named by `hint` (`repo` or `org/project/repo`), or the only one. */
function chooseProject(candidates: Candidate[], adoProject: string, hint: string | undefined): Candidate | string {
  const { org } = d();
  if (hint) {
    const full = (hint.includes('/') ? hint : `${org}/${adoProject}/${hint}`).toLowerCase();
    return candidates.find((c) => c.repositoryIdentifier.toLowerCase() === full)
      ?? `${hint} is not a Flowgate project of Azure DevOps project ${adoProject} (known: ${candidates.map((c) => c.repositoryIdentifier).join(', ') || 'none'})`;
  }
  if (candidates.length === 1) return candidates[0];
  if (!candidates.length) return `No Flowgate project is registered for Azure DevOps project ${org}/${adoProject} (register one as ${org}/${adoProject}/<repo>)`;
  return `Azure DevOps project ${adoProject} has several Flowgate projects (${candidates.map((c) => c.repositoryIdentifier).join(', ')}): say which with repo=<repo>, or set the work item field Custom.FlowgateRepository`;
}

const repositoryHint = (wi: WorkItemData): string | undefined => {
  const v = Object.entries(wi.fields).find(([k]) => /^custom\.flowgaterepository$/i.test(k))?.[1];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
};

interface ApprovalRef { id: string; status: string; repositoryIdentifier: string }

/** The approval posted to this work item (pending first, else the latest), through the core's lookup. */
async function approvalOf(candidates: Candidate[], workItemId: number): Promise<ApprovalRef | null> {
  const { s } = d();
  let best: ApprovalRef & { at: number } | null = null;
  for (const c of candidates) {
    const a = await s.approvals.byChat('azureDevOps', { repositoryIdentifier: c.repositoryIdentifier, workItemId });
    if (!a) continue;
    const ref = { id: a.id, status: a.status, repositoryIdentifier: c.repositoryIdentifier, at: a.requestedAt.getTime() };
    if (!best || (ref.status === 'pending') > (best.status === 'pending') || ((ref.status === 'pending') === (best.status === 'pending') && ref.at > best.at)) best = ref;
  }
  return best ? { id: best.id, status: best.status, repositoryIdentifier: best.repositoryIdentifier } : null;
}

/** The runs started from this work item, newest first (plus the run of its approval). */
async function runsOf(candidates: Candidate[], workItemId: number): Promise<{ id: string; status: string; line: string }[]> {
  const { s } = d();
  const runs: Run[] = [];
  for (const c of candidates) {
    const { runs: page } = await listRuns(s.orm, { repositoryIdentifier: c.repositoryIdentifier, workItemKey: String(workItemId), workItemType: 'ado-workitem', includeScheduled: true, limit: 10, page: 1 });
    runs.push(...page);
  }
  const approval = await approvalOf(candidates, workItemId);
  if (approval) {
    const a = await s.approvals.get(approval.id);
    const run = a?.runId && !runs.some((r) => r.id === a.runId) ? await s.store.findById(a.runId) : null;
    if (run) runs.push(run);
  }
  return runs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).map((r) => ({ id: r.id, status: r.status, line: describeRun(r) }));
}

// ---------------------------------------------------------------------------------------------
// Writing back: replies are comments on the work item, each posted once (a checkpointed step).

async function reply(project: string, workItemId: number, html: string): Promise<void> {
  await DBOS.runStep(async () => { await d().client.addComment(project, workItemId, html); }, { name: 'reply', ...READ });
}

function callbackFor(repositoryIdentifier: string, project: string, workItemId: number): Callback {
  return { type: 'azure-devops', azureDevOps: { repositoryIdentifier, workItemId, project } };
}

function workItemRefFor(project: string, workItemId: number): WorkItemRef {
  const { settings, org } = d();
  return { type: 'ado-workitem', key: String(workItemId), organization: org, project, url: `${settings.orgUrl}/${encodeURIComponent(project)}/_workitems/edit/${workItemId}` };
}

// ---------------------------------------------------------------------------------------------
// Events.

/** Processes one accepted service hook event (in workflow context, see `inbound.ts`). */
export async function processHook(payload: unknown, deliveryId: string): Promise<void> {
  const event = payload as HookEvent;
  if (event.kind === 'pipeline-run') return onPipelineRun(event, deliveryId);
  if (event.eventType === 'workitem.commented') return onCommented(event);
  return onWorkItemChange(event);
}

interface ChangeRead {
  current: WorkItemData;
  revision: WorkItemData;
  previous?: WorkItemData;
  candidates: Candidate[];
  actor: PersonOrWhy;
}

async function readChange(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<ChangeRead | null> {
  const { client } = d();
  const current = await client.workItem(ev.workItemId, ev.project);
  if (!current) return null;
  const rev = ev.rev ?? current.rev;
  const revision = rev === current.rev ? current : await client.revision(ev.workItemId, rev, current.project);
  if (!revision) return null;
  const previous = ev.eventType === 'workitem.updated' && rev > 1 ? await client.revision(ev.workItemId, rev - 1, current.project) : undefined;
  const actor = await personOf(ev.eventType === 'workitem.created' ? revision.createdBy ?? revision.changedBy : revision.changedBy);
  return { current, revision, previous, candidates: await candidatesOf(current.project), actor };
}

/** workitem.created (type and tags) and workitem.updated (a new state, added tags). */
async function onWorkItemChange(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<void> {
  const read = await DBOS.runStep(() => readChange(ev), { name: 'read', ...READ });
  if (!read) return;
  const { revision, previous, candidates, actor } = read;
  const { settings } = d();
  const project = read.current.project;
  const id = revision.id;

  if (ev.eventType === 'workitem.updated' && previous && revision.state.toLowerCase() !== previous.state.toLowerCase()) {
    const verdict = revision.state.toLowerCase() === settings.approvedState.toLowerCase() ? 'approve'
      : revision.state.toLowerCase() === settings.rejectedState.toLowerCase() ? 'reject' : undefined;
    if (verdict) {
      const note = revision.history ? htmlToText(revision.history) : '';
      await decide(project, id, candidates, actor, verdict, verdict === 'reject' ? note || `work item moved to ${revision.state}` : null,
        `moving the work item to ${revision.state}`, `state:${revision.rev}`, false);
    }
  }

  const tags = tagsOf(revision.fields['System.Tags']);
  const before = new Set(tagsOf(previous?.fields['System.Tags']).map((t) => t.toLowerCase()));
  const added = ev.eventType === 'workitem.created' ? tags : tags.filter((t) => !before.has(t.toLowerCase()));
  const type = ev.eventType === 'workitem.created' ? revision.type : null;
  const mapped = candidates.map((c) => ({ c, flows: mappedFlows(c.workItemFlows, type, added) })).filter((m) => m.flows.length);
  if (!mapped.length) return;
  let chosen = mapped;
  const hint = repositoryHint(revision);
  if (hint || mapped.length > 1) {
    const pick = chooseProject(mapped.map((m) => m.c), project, hint);
    if (typeof pick === 'string') return reply(project, id, renderReply('no flow started', pick));
    chosen = mapped.filter((m) => m.c === pick);
  }
  if (!actor.person) return reply(project, id, renderReply('no flow started', actor.why!));
  for (const { c, flows } of chosen) {
    for (const flow of flows) {
      const def = d().s.registry.find(flow.flowType);
      const params = def ? paramsFromWorkItem(def, revision.fields) : {};
      const key = `wi:${c.repositoryIdentifier}:${id}:rev${revision.rev}:${flow.flowType}`;
      const outcome = await act(key, {
        kind: 'start', key, flowType: flow.flowType, params, repositoryIdentifier: c.repositoryIdentifier, person: actor.person,
        callback: callbackFor(c.repositoryIdentifier, project, id), workItemRef: workItemRefFor(project, id),
      });
      await reply(project, id, outcome.ok
        ? renderRunStarted({ id: outcome.runId!, taskType: outcome.taskType!, triggeredBy: actor.person.email, because: flow.because })
        : renderReply(`${flow.flowType} was not started (${flow.because})`, outcome.text));
    }
  }
}

/**
 * A decision from this work item: the approval posted to it, decided by the person through the
 * core (same rules as every door). A refusal is explained in a comment; the approval stays pending.
 */
async function decide(project: string, workItemId: number, candidates: Candidate[], actor: PersonOrWhy, verdict: 'approve' | 'reject', reason: string | null,
  what: string, key: string, explainMissing: boolean): Promise<void> {
  const approval = await DBOS.runStep(() => approvalOf(candidates, workItemId), { name: 'approval', ...READ });
  if (!approval || approval.status !== 'pending') {
    if (explainMissing) await reply(project, workItemId, renderReply(`${what} did nothing`, approval ? `The approval on this work item is already ${approval.status}.` : 'No Flowgate approval is pending on this work item.'));
    return;
  }
  if (!actor.person) return reply(project, workItemId, renderRefusal(actor.uniqueName, what, actor.why!, true));
  const outcome = await act(`decide:${approval.repositoryIdentifier}:${workItemId}:${key}`, { kind: 'decide', approvalId: approval.id, person: actor.person, verdict, reason });
  if (outcome.ok) return; // the approval's own update (vote or decision) is commented by the destination
  const stillPending = await DBOS.runStep(async () => (await d().s.approvals.get(approval.id))?.status === 'pending', { name: 'still-pending', ...READ });
  await reply(project, workItemId, renderRefusal(actor.person.email, what, outcome.text, stillPending));
}

interface CommentRead {
  current: WorkItemData;
  comment: CommentData | null;
  candidates: Candidate[];
  actor: PersonOrWhy;
  own: boolean;
}

const normalized = (html: string) => htmlToText(html).replace(/\s+/g, ' ').trim();

/**
 * The comment of a workitem.commented event, re-read: the revision the event names holds the
 * comment's text (System.History) and its author; the comment itself is found among the work
 * item's comments by that text and author. Without a revision (minimal resource details), the
 * newest comment. Acting is keyed by the comment's id, so one comment never acts twice.
 */
async function readComment(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<CommentRead | null> {
  const { client } = d();
  const current = await client.workItem(ev.workItemId, ev.project);
  if (!current) return null;
  const comments = await client.comments(current.project, current.id);
  const newestFirst = [...comments].sort((a, b) => b.id - a.id);
  const sameAuthor = (c: CommentData, who: AdoIdentity | undefined) => !who || c.createdBy?.uniqueName.toLowerCase() === who.uniqueName.toLowerCase();
  let comment: CommentData | undefined;
  if (ev.rev) {
    const revision = ev.rev === current.rev ? current : await client.revision(current.id, ev.rev, current.project);
    if (revision?.history) {
      const text = normalized(revision.history);
      comment = newestFirst.find((c) => normalized(c.text) === text && sameAuthor(c, revision.changedBy));
    } else if (revision && newestFirst[0] && sameAuthor(newestFirst[0], revision.changedBy)) {
      // A revision without the text: the newest comment, if its author made that revision.
      comment = newestFirst[0];
    }
  } else comment = newestFirst[0];
  const own = Boolean(comment?.createdBy && client.botUniqueName && comment.createdBy.uniqueName.toLowerCase() === client.botUniqueName.toLowerCase());
  return { current, comment: comment ?? null, candidates: await candidatesOf(current.project), actor: await personOf(comment?.createdBy), own };
}

/** Commands in a work-item comment. */
async function onCommented(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<void> {
  const read = await DBOS.runStep(() => readComment(ev), { name: 'read', ...READ });
  if (!read?.comment || read.own) return;
  const parsed = parseComment(htmlToText(read.comment.text));
  if (parsed.kind === 'ignore') return;
  const { current, comment, candidates, actor } = read;
  const project = current.project;
  const id = current.id;
  if (parsed.kind === 'reply') return reply(project, id, renderReply('that command was not understood', parsed.text));
  const cmd: Command = parsed.command;
  const key = `comment:${d().org}/${project}:${id}:${comment.id}`;
  switch (cmd.name) {
    case 'help':
      return reply(project, id, renderReply('commands (start a line of a comment with /flowgate, or use /approve, /reject, /status, /cancel)', HELP));
    case 'approve':
    case 'reject':
      return decide(project, id, candidates, actor, cmd.name, cmd.name === 'reject' ? cmd.reason : null, `the ${cmd.name} command`, `comment:${comment.id}`, true);
    case 'run': {
      const pick = chooseProject(candidates, project, cmd.repo ?? repositoryHint(current));
      if (typeof pick === 'string') return reply(project, id, renderReply(`${cmd.flowType} was not started`, pick));
      if (!actor.person) return reply(project, id, renderReply(`${cmd.flowType} was not started`, actor.why!));
      const outcome = await act(key, {
        kind: 'start', key, flowType: cmd.flowType, params: cmd.params, repositoryIdentifier: pick.repositoryIdentifier, person: actor.person,
        callback: callbackFor(pick.repositoryIdentifier, project, id), workItemRef: workItemRefFor(project, id),
      });
      return reply(project, id, outcome.ok
        ? renderRunStarted({ id: outcome.runId!, taskType: outcome.taskType!, triggeredBy: actor.person.email, because: 'comment command' })
        : renderReply(`${cmd.flowType} was not started`, outcome.text));
    }
    case 'status':
    case 'approvals': {
      const text = await DBOS.runStep(async () => {
        const runs = await runsOf(candidates, id);
        const shown = cmd.name === 'status' && cmd.runId ? runs.filter((r) => r.id === cmd.runId) : runs.slice(0, 5);
        const approval = await approvalOf(candidates, id);
        const a = approval ? await d().s.approvals.get(approval.id) : null;
        const lines = shown.map((r) => r.line);
        if (a) lines.push(`Approval ${a.id}: ${a.status}${a.status === 'pending' ? ` (${new Set(a.decisions.filter((x) => x.verdict === 'approve').map((x) => x.email)).size} of ${a.quorum} approvals, expires ${formatTime(a.expiresAt.toISOString())})` : a.resolvedBy ? ` by ${a.resolvedBy}` : ''}`);
        return lines.length ? lines.join('\n') : 'No Flowgate run or approval is linked to this work item.';
      }, { name: 'status', ...READ });
      return reply(project, id, renderReply('status', text));
    }
    case 'cancel': {
      if (!actor.person) return reply(project, id, renderReply('nothing was cancelled', actor.why!));
      const runId = await DBOS.runStep(async () => {
        const runs = await runsOf(candidates, id);
        return (cmd.runId ? runs.find((r) => r.id === cmd.runId) : runs.find((r) => !isTerminalRun(r.status as Run['status'])))?.id ?? null;
      }, { name: 'find-run', ...READ });
      if (!runId) return reply(project, id, renderReply('nothing was cancelled', cmd.runId ? `Run ${cmd.runId} is not linked to this work item.` : 'No unfinished Flowgate run is linked to this work item.'));
      const outcome = await act(key, { kind: 'cancel', runId, person: actor.person });
      return reply(project, id, outcome.ok ? renderReply('cancelled', `${outcome.taskType} run ${outcome.runId} was cancelled by ${actor.person.email}.`) : renderReply('nothing was cancelled', outcome.text));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Azure Pipelines: a run-state-changed event moves the cicd run like a status report would.

const REPORT_OF: Record<string, StatusReport['status']> = { succeeded: 'completed', failed: 'failed', canceled: 'cancelled' };

async function onPipelineRun(ev: Extract<HookEvent, { kind: 'pipeline-run' }>, deliveryId: string): Promise<void> {
  const found = await DBOS.runStep(async () => {
    const { client, s } = d();
    const pipelineRun = await client.pipelineRun(ev.project, ev.pipelineId, ev.runId);
    if (!pipelineRun) return null;
    const executionId = pipelineRun.templateParameters[PIPELINE_PARAMETERS.executionId];
    let run = executionId && /^[0-9a-f-]{36}$/i.test(executionId) ? await s.store.findById(executionId, true) : null;
    if (!run) {
      const byPipeline = await s.orm.em.fork().findOne(Run, { cicdRunId: String(pipelineRun.id), executionMode: 'cicd' }, { orderBy: { createdAt: 'desc' } });
      run = byPipeline ? await s.store.findById(byPipeline.id, true) : null;
    }
    // Only a run of an azure-pipelines flow type that this pipeline run belongs to.
    if (!run || run.executionMode !== 'cicd' || run.definition?.cicd?.provider !== 'azure-pipelines') return null;
    if (run.cicdRunId && run.cicdRunId !== String(pipelineRun.id)) return null;
    if (String(run.definition.cicd.pipeline) !== String(pipelineRun.pipelineId ?? ev.pipelineId)) return null;
    const status = pipelineRun.state === 'inProgress' ? 'running' : pipelineRun.state === 'completed' ? REPORT_OF[pipelineRun.result ?? ''] : undefined;
    if (!status || (status === 'running' && run.status !== 'queued')) return null;
    return { runId: run.id, report: { status, cicdRunId: String(pipelineRun.id), ...(pipelineRun.url ? { cicdRunUrl: pipelineRun.url } : {}) } as StatusReport };
  }, { name: 'read', ...READ });
  if (!found) return;
  const outcome = await act(`report:${found.runId}:${ev.runId}:${found.report.status}`, { kind: 'report', runId: found.runId, report: found.report });
  if (!outcome.ok) d().s.log.info({ runId: found.runId, deliveryId, reason: outcome.text }, 'Azure Pipelines run state not applied');
}
