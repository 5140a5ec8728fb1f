import type { Services } from '../../container.js';
import { isTerminalRun } from '../../core/status.js';
import type { Run } from '../../db/entities/run.js';
import { approvalCount } from '../../core/approvals/approval-rules.js';
import { approvalOfThread, cancelForPerson, controlForPerson, decideForPerson, describeRun, startRunForPerson } from '../actions.js';
import { signInElsewhere, type Command, type Parsed, type RunVerb } from '../commands.js';
import type { Reaction } from './client.js';
import type { CommentEvent } from './events.js';
import { renderHelp, renderReply, renderRunStarted, renderUnlinked } from './render.js';
import { callbackOf, personOf, runOfThread, threadRefOf, workItemOf } from './thread.js';

/** What the door answers a comment with: a reply comment and a reaction on the comment. */
export interface Reply {
  text: string;
  reaction?: Reaction;
}

const refused = (e: CommentEvent, text: string): Reply => ({ text: renderReply(e.login, text), reaction: '-1' });
/** Replies address the commenter first (`@login there is …`). */
const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

/**
 * Answers a parsed comment by calling the core, as a REST request would; never throws for what a
 * person did wrong (that is a reply), only for failures worth processing the delivery again.
 */
export async function answerComment(s: Services, e: CommentEvent, parsed: Exclude<Parsed, { kind: 'ignore' }>, deliveryId: string): Promise<Reply> {
  if (parsed.kind === 'reply') {
    // The shared parser lists the chat commands after an unknown one; GitHub's are in `/flowgate help`.
    const text = /^Unknown command/.test(parsed.text) ? `${parsed.text.split('. Commands:')[0]}. Comment \`/flowgate help\` for the commands.` : parsed.text.replace(/\bUsage: /, 'Usage: /flowgate ');
    return { text: renderReply(e.login, text), reaction: 'confused' };
  }
  const c = parsed.command;
  switch (c.name) {
    case 'help':
      return { text: renderHelp(s.registry.listFor([e.repositoryIdentifier]).map((d) => ({ id: d.id, description: d.description }))) };
    case 'run':
      return run(s, e, c, deliveryId);
    case 'approve':
    case 'reject':
      return decide(s, e, c);
    case 'status':
    case 'cancel':
    case 'pause':
    case 'resume':
    case 'retry':
      return statusOrControl(s, e, c);
    case 'approvals':
      return approvals(s, e);
    case 'login':
      return { text: renderReply(e.login, lowerFirst(signInElsewhere(s.config.publicUrl))) };
  }
}

async function run(s: Services, e: CommentEvent, c: Extract<Command, { name: 'run' }>, deliveryId: string): Promise<Reply> {
  // Who may start flows (association, write permission) was checked before: `handle.ts`.
  if (c.repo && c.repo.toLowerCase() !== e.repositoryIdentifier.toLowerCase())
    return refused(e, `runs started here belong to ${e.repositoryIdentifier}; start runs of ${c.repo} from that repository.`);
  if (!(await s.projects.find(e.repositoryIdentifier)))
    return refused(e, `${e.repositoryIdentifier} is not registered with Flowgate. A Flowgate owner registers it with \`PUT /api/v1/projects/${e.repositoryIdentifier}\`.`);
  const person = await personOf(s, e);
  if (!person) return { text: renderUnlinked(e.login), reaction: '-1' };
  const started = await startRunForPerson(s, {
    flowType: c.flowType, params: c.params, repositoryIdentifier: e.repositoryIdentifier, person,
    callback: callbackOf(e, e.commentId), workItemRef: workItemOf(e), deliveryId, door: 'github',
  });
  if (!started.ok) return refused(e, started.text);
  return { text: renderRunStarted(e.login, started.value) };
}

async function decide(s: Services, e: CommentEvent, c: Extract<Command, { name: 'approve' | 'reject' }>): Promise<Reply> {
  const target = await approvalOfThread(s, threadRefOf(e), c.approvalId, (id) => `\`/${c.name} ${id}${c.name === 'reject' ? ' <reason>' : ''}\``);
  if (!target.ok) return refused(e, lowerFirst(target.text));
  const approval = target.approval;
  const person = await personOf(s, e);
  if (!person) return { text: renderUnlinked(e.login), reaction: '-1' };
  const verdict = c.name;
  const outcome = await decideForPerson(s, approval.id, person, verdict, c.name === 'reject' ? c.reason : null, 'github');
  if (!outcome.ok) {
    const now = await s.approvals.get(approval.id);
    return refused(e, `${outcome.text.replace(/\.?$/, '.')}${now?.status === 'pending' ? ' The request is still pending.' : ''}`);
  }
  const status = outcome.value;
  if (status === 'pending') {
    const now = await s.approvals.get(approval.id);
    const count = now ? approvalCount(now) : 0;
    return { text: renderReply(e.login, `your approval is recorded (${count} of ${approval.quorum}); the request stays pending until the quorum is reached.`), reaction: '+1' };
  }
  return { text: renderReply(e.login, status === 'approved' ? 'approved: the run continues.' : `rejected: the run stops${c.name === 'reject' ? ` (${c.reason})` : ''}.`), reaction: '+1' };
}

async function statusOrControl(s: Services, e: CommentEvent, c: Extract<Command, { name: 'status' | RunVerb }>): Promise<Reply> {
  let run: Run | null;
  if (c.runId) {
    run = await s.store.findByIdOrEngineId(c.runId).catch(() => null);
    if (run && run.repositoryIdentifier !== e.repositoryIdentifier) run = null;
    if (!run) return refused(e, `there is no run ${c.runId} of ${e.repositoryIdentifier}.`);
  } else {
    run = await runOfThread(s, e);
    if (!run) return refused(e, 'no run was started from this thread; name one: `/status <runId>`.');
  }
  if (c.name === 'status') {
    const approval = await s.approvals.forRun(run.id);
    const waiting = approval?.status === 'pending' ? ` Waiting for approval ${approval.id} (${approvalCount(approval)} of ${approval.quorum}).` : '';
    return { text: renderReply(e.login, `${describeRun(run)}.${waiting}`) };
  }
  // Only a retry acts on an ended run (the core refuses one that has not ended).
  if (c.name !== 'retry' && isTerminalRun(run.status)) return refused(e, `run ${run.id} already ended: ${run.status}.`);
  const person = await personOf(s, e);
  if (!person) return { text: renderUnlinked(e.login), reaction: '-1' };
  if (c.name !== 'cancel') {
    const done = await controlForPerson(s, run, person, 'github', c.name);
    return done.ok ? { text: renderReply(e.login, lowerFirst(done.value)), reaction: '+1' } : refused(e, lowerFirst(done.text));
  }
  const cancelled = await cancelForPerson(s, run, person, 'github');
  if (!cancelled.ok) return refused(e, cancelled.text);
  return { text: renderReply(e.login, `cancelled run ${run.id} (${run.taskType}).`), reaction: '+1' };
}

async function approvals(s: Services, e: CommentEvent): Promise<Reply> {
  const pending = await s.approvals.listPending([e.repositoryIdentifier]);
  if (!pending.length) return { text: renderReply(e.login, `no approval of ${e.repositoryIdentifier} is pending.`) };
  const lines = pending.map((a) => {
    const where = a.chat.github ? ` — #${a.chat.github.issueNumber}` : '';
    return `- \`${a.id}\` ${String(a.context.taskType ?? a.taskId ?? '')}, requested by ${a.requestedBy}, expires ${a.expiresAt.toISOString().slice(0, 16).replace('T', ' ')} UTC${where}`;
  });
  return { text: renderReply(e.login, `pending approvals of ${e.repositoryIdentifier}:\n\n${lines.join('\n')}`) };
}
