import { step } from '../inbound.js';
import { act, callbackFor, reply, workItemRefFor } from './act.js';
import type { WorkItemData } from './client.js';
import { d, READ } from './context.js';
import { decide } from './decide.js';
import type { HookEvent } from './hooks.js';
import { htmlToText } from './html.js';
import { candidatesOf, chooseProject, personOf, repositoryHint, type Candidate, type PersonOrWhy } from './read.js';
import { renderReply, renderRunStarted } from './render.js';
import { mappedFlows, paramsFromWorkItem, tagsOf } from './work-items.js';

// workitem.created and workitem.updated: flows mapped to the type or added tags, and decisions by state.

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
export async function onWorkItemChange(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<void> {
  const read = await step('read', () => readChange(ev), READ);
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
