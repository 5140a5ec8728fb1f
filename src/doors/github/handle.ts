import type { Logger } from 'pino';
import type { Services } from '../../container.js';
import { parseComment } from '../commands.js';
import { answerComment } from './answer-comment.js';
import { answerIssueRequest } from './answer-issue.js';
import type { GithubClient } from './client.js';
import { coreStep, step } from './durable.js';
import type { CommentEvent, InboundEvent, IssueRequest } from './events.js';
import { threadOf } from './thread.js';

/**
 * Processes one accepted delivery, durably (in the delivery's workflow): every GitHub call and
 * every core call is a checkpointed step, so a recovered delivery neither posts twice nor acts
 * twice. A failure (GitHub unreachable after retries) fails the delivery; redelivering it from
 * GitHub processes it again, and the run it started, if any, is found again by its id.
 */
export function inboundHandler(s: Services, gh: GithubClient, log: Logger) {
  return async (payload: unknown, deliveryId: string): Promise<void> => {
    const event = payload as InboundEvent;
    const dlog = log.child({ deliveryId, repository: event.repositoryIdentifier, issue: event.issueNumber });
    if (event.kind === 'comment') await comment(s, gh, dlog, event, deliveryId);
    else if (event.kind === 'issue-request') await issueRequest(s, gh, event, deliveryId);
  };
}

async function comment(s: Services, gh: GithubClient, log: Logger, e: CommentEvent, deliveryId: string): Promise<void> {
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
  const reply = await coreStep('answer', () => answerComment(s, e, parsed, deliveryId));
  await step('reply', () => gh.comment(thread, reply.text), true);
  const reaction = reply.reaction;
  if (reaction) await step('react', () => gh.react(thread, e.commentId, reaction).then(() => true, () => false));
}

async function issueRequest(s: Services, gh: GithubClient, e: IssueRequest, requestKey: string): Promise<void> {
  const text = await coreStep('answer', () => answerIssueRequest(s, e, requestKey));
  if (text) await step('reply', () => gh.comment(threadOf(e), text), true);
}
