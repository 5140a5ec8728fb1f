import { step } from '../inbound.js';
import type { Run } from '../../db/entities/run.js';
import { isTerminalRun } from '../../core/status.js';
import { approvalCount } from '../../core/approvals/approval-rules.js';
import { HELP, parseComment, signInElsewhere, type Command } from '../commands.js';
import { act, callbackFor, reply, workItemRefFor } from './act.js';
import type { CommentData, WorkItemData } from './client.js';
import { d, READ } from './context.js';
import { decide } from './decide.js';
import type { HookEvent } from './hooks.js';
import { htmlToText } from './html.js';
import { candidatesOf, chooseProject, personOf, repositoryHint, runsOf, threadOf, type Candidate, type PersonOrWhy } from './read.js';
import { formatTime, renderReply, renderRunStarted } from './render.js';
import type { AdoIdentity } from './work-items.js';

// workitem.commented: commands in a work item's comments.

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
export async function onCommented(ev: Extract<HookEvent, { kind: 'workitem' }>): Promise<void> {
  const read = await step('read', () => readComment(ev), READ);
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
    case 'login':
      return reply(project, id, renderReply('signing in to the web console', signInElsewhere(d().s.config.publicUrl)));
    case 'approve':
    case 'reject':
      return decide(project, id, candidates, actor, cmd.name, cmd.name === 'reject' ? cmd.reason : null, `the ${cmd.name} command`, `comment:${comment.id}`, true, cmd.approvalId);
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
      const text = await step('status', async () => {
        const runs = await runsOf(candidates, id);
        const shown = cmd.name === 'status' && cmd.runId ? runs.filter((r) => r.id === cmd.runId) : runs.slice(0, 5);
        // The pending approvals (each, so one can be named), else the latest.
        const all = await d().s.approvals.inThread(threadOf(candidates, id));
        const pending = all.filter((a) => a.status === 'pending');
        const lines = shown.map((r) => r.line);
        for (const a of pending.length ? pending : all.slice(0, 1))
          lines.push(`Approval ${a.id}: ${a.status}${a.status === 'pending' ? ` (${approvalCount(a)} of ${a.quorum} approvals, expires ${formatTime(a.expiresAt.toISOString())})` : a.resolvedBy ? ` by ${a.resolvedBy}` : ''}`);
        return lines.length ? lines.join('\n') : 'No Flowgate run or approval is linked to this work item.';
      }, READ);
      return reply(project, id, renderReply('status', text));
    }
    case 'cancel': {
      if (!actor.person) return reply(project, id, renderReply('nothing was cancelled', actor.why!));
      const runId = await runToControl(candidates, id, cmd.runId);
      if (!runId) return reply(project, id, renderReply('nothing was cancelled', cmd.runId ? `Run ${cmd.runId} is not linked to this work item.` : 'No unfinished Flowgate run is linked to this work item.'));
      const outcome = await act(key, { kind: 'cancel', runId, person: actor.person });
      return reply(project, id, outcome.ok ? renderReply('cancelled', `${outcome.taskType} run ${outcome.runId} was cancelled by ${actor.person.email}.`) : renderReply('nothing was cancelled', outcome.text));
    }
    case 'pause':
    case 'resume':
    case 'retry': {
      const verb = cmd.name;
      const nothing = `nothing was ${PAST[verb]}`;
      if (!actor.person) return reply(project, id, renderReply(nothing, actor.why!));
      const runId = await runToControl(candidates, id, cmd.runId, verb === 'retry' ? 'latest' : 'unfinished');
      if (!runId) return reply(project, id, renderReply(nothing, cmd.runId ? `Run ${cmd.runId} is not linked to this work item.` : `No ${verb === 'retry' ? '' : 'unfinished '}Flowgate run is linked to this work item.`));
      const outcome = await act(key, { kind: verb, runId, person: actor.person });
      return reply(project, id, outcome.ok ? renderReply(PAST[verb], `${outcome.text} (${actor.person.email})`) : renderReply(nothing, outcome.text));
    }
  }
}

const PAST = { pause: 'paused', resume: 'resumed', retry: 'retried' } as const;

/**
 * The run a command in a work item means: the one named, else the item's unfinished run (cancel,
 * pause, resume) or its latest run (retry, which the core refuses if it has not ended).
 */
function runToControl(candidates: Parameters<typeof runsOf>[0], workItemId: number, named: string | undefined, which: 'unfinished' | 'latest' = 'unfinished'): Promise<string | null> {
  return step('find-run', async () => {
    const runs = await runsOf(candidates, workItemId);
    const run = named ? runs.find((r) => r.id === named) : which === 'latest' ? runs[0] : runs.find((r) => !isTerminalRun(r.status as Run['status']));
    return run?.id ?? null;
  }, READ);
}
