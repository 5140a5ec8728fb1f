import type { App, BlockButtonAction } from '@slack/bolt';
import type { Logger } from 'pino';
import type { Services } from '../../container.js';
import { presentApproval } from '../../core/approvals/present-approval.js';
import { isUuid } from '../../core/ids.js';
import type { SlackChat } from './chat.js';
import { flowRef } from './destination.js';
import type { SlackJob } from './jobs.js';
import { APPROVE_ACTION, esc, REASON_BLOCK, REASON_INPUT, REJECT_ACTION, REJECT_VIEW, rejectModal } from './messages.js';
import { SlackPeople } from './people.js';

interface Deps {
  s: Services;
  chat: SlackChat;
  people: SlackPeople;
  command: string;
  log: Logger;
  /** Stores a delivery for durable processing, once per delivery id. */
  accept(deliveryId: string, job: SlackJob): Promise<'accepted' | 'duplicate'>;
}

/** The words after a mention of the bot: "hey <@U0BOT> run x" → "run x". */
export function afterMention(text: string): string {
  const m = /<@[A-Z0-9]+(?:\|[^>]*)?>/i.exec(text);
  return (m ? text.slice(m.index + m[0].length) : text).trim();
}

/**
 * Bolt routes each request here. Listeners store what was asked (deduplicated by Slack's ids:
 * a retry or replay is a duplicate) and acknowledge; the work happens in `slackJobs`.
 */
export function registerListeners(app: App, d: Deps): void {
  const accept = async (deliveryId: string, job: SlackJob) => {
    if ((await d.accept(deliveryId, job)) === 'duplicate') d.log.info({ deliveryId }, 'Slack delivery seen before; not processed again');
  };

  app.command(d.command, async ({ command, ack }) => {
    await accept(`command:${command.trigger_id}`, { kind: 'command', text: command.text ?? '', user: command.user_id, channel: command.channel_id });
    await ack();
  });

  // Events are acknowledged by Bolt before listeners run; the receiver answers once this returned.
  app.event('app_mention', async ({ event, body }) => {
    if (!event.user) return;
    await accept(`event:${body.event_id}`, { kind: 'command', text: afterMention(event.text), user: event.user, channel: event.channel, threadTs: event.thread_ts });
  });

  // A button's value is the one approval it decides (anything else is not one of ours: ignored).
  app.action<BlockButtonAction>({ type: 'block_actions', action_id: APPROVE_ACTION }, async ({ body, action, ack }) => {
    if (!isUuid(action.value ?? '')) return ack();
    const threadTs = body.message?.thread_ts ?? (body.container as { thread_ts?: string } | undefined)?.thread_ts;
    await accept(`action:${body.trigger_id}`, { kind: 'approve', approvalId: action.value ?? '', user: body.user.id, channel: body.channel?.id ?? '', threadTs });
    await ack();
  });

  // Rejecting asks why first: a modal, opened at once (its trigger is valid for 3 s). Opening
  // it changes nothing, so it is not stored; someone who may not reject is told instead.
  app.action<BlockButtonAction>({ type: 'block_actions', action_id: REJECT_ACTION }, async ({ body, action, ack }) => {
    await ack();
    const channel = body.channel?.id ?? '';
    const threadTs = body.message?.thread_ts;
    const tell = (text: string) => d.chat.ephemeral(channel, body.user.id, text, threadTs);
    const a = isUuid(action.value ?? '') ? await d.s.approvals.get(action.value!) : null;
    if (!a) return tell('That approval request no longer exists.');
    if (a.status !== 'pending') return tell(`This request is already ${a.status}.`);
    const who = await d.people.resolve(body.user.id);
    if (!who) return tell(SlackPeople.unknown(body.user.id));
    // Asked early only to spare a modal; the decision itself is `decide`'s.
    const why = await d.s.approvals.refusalFor(a, who, 'reject');
    if (why) return tell(esc(why));
    await d.chat.openView(body.trigger_id, rejectModal(presentApproval(a, null), flowRef(d.s, (a.context as Record<string, unknown>).taskType as string | undefined)));
  });

  app.view({ type: 'view_submission', callback_id: REJECT_VIEW }, async ({ view, body, ack }) => {
    const reason = view.state.values[REASON_BLOCK]?.[REASON_INPUT]?.value?.trim();
    if (!reason) return ack({ response_action: 'errors', errors: { [REASON_BLOCK]: 'Say why you reject this request.' } });
    await accept(`view:${view.id}`, { kind: 'reject', approvalId: view.private_metadata, user: body.user.id, reason });
    await ack();
  });
}
