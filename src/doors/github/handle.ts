import type { Logger } from 'pino';
import type { Services } from '../../container.js';
import { parseComment, type Parsed } from '../commands.js';
import { answerComment, type Reply } from './answer-comment.js';
import { answerIssueRequest } from './answer-issue.js';
import type { GithubClient } from './client.js';
import { step } from './durable.js';
import type { CommentEvent, InboundEvent, IssueRequest } from './events.js';
import { refusalFor, type RepoPermissions } from './permission.js';
import { renderReply } from './render.js';
import { threadOf } from './thread.js';

/**
 * Processes one accepted delivery (`inbound.ts`): every GitHub call and every core call is a
 * recorded step, so a delivery processed again after a crash neither posts twice nor acts twice.
 * A failure (GitHub unreachable after retries) fails the delivery; redelivering it from GitHub
 * processes it again, and the run it started, if any, is found again by its id.
 */
export function inboundHandler(s: Services, gh: GithubClient, permissions: RepoPermissions, log: Logger) {
  return async (payload: unknown, deliveryId: string): Promise<void> => {
    const event = payload as InboundEvent;
    const dlog = log.child({ deliveryId, repository: event.repositoryIdentifier, issue: event.issueNumber });
    if (event.kind === 'comment') await comment(s, gh, permissions, dlog, event, deliveryId);
    else if (event.kind === 'issue-request') await issueRequest(s, gh, permissions, event, deliveryId);
  };
}

/** What each command that changes something needs the sender to be allowed to do (write access). */
const ACTS: Record<string, string> = { run: 'start flows', approve: 'approve or reject', reject: 'approve or reject', cancel: 'cancel runs' };

/** A refusal when the command changes something and the sender may not; nothing is done then. */
async function gate(s: Services, permissions: RepoPermissions, e: CommentEvent, parsed: Exclude<Parsed, { kind: 'ignore' }>): Promise<Reply | null> {
  const what = parsed.kind === 'command' ? ACTS[parsed.command.name] : undefined;
  if (!what) return null;
  const refused = await refusalFor(s, permissions, e, what, { command: parsed.kind === 'command' ? parsed.command.name : null, commentId: e.commentId, issueNumber: e.issueNumber });
  return refused ? { text: renderReply(e.login, refused), reaction: '-1' } : null;
}

async function comment(s: Services, gh: GithubClient, permissions: RepoPermissions, log: Logger, e: CommentEvent, deliveryId: string): Promise<void> {
  const parsed = parseComment(e.body);
  if (parsed.kind === 'ignore') return;
  const thread = threadOf(e);
  // Receipt: 👀 at once. Cosmetic, so a failure is only logged.
  await step('ack', async () => {
    try {
      await gh.react(thread, e.commentId, 'eyes');
      return true;
    } catch (err) {
      log.warn({ err }, 'acknowledging a command comment');
      return false;
    }
  });
  const reply = await step('answer', async () => (await gate(s, permissions, e, parsed)) ?? answerComment(s, e, parsed, deliveryId));
  await step('reply', () => gh.comment(thread, reply.text), true);
  const reaction = reply.reaction;
  if (reaction) await step('react', () => gh.react(thread, e.commentId, reaction).then(() => true, () => false));
}

async function issueRequest(s: Services, gh: GithubClient, permissions: RepoPermissions, e: IssueRequest, requestKey: string): Promise<void> {
  const text = await step('answer', () => answerIssueRequest(s, permissions, e, requestKey));
  if (text) await step('reply', () => gh.comment(threadOf(e), text), true);
}
