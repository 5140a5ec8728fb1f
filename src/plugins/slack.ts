import { z } from 'zod';
import type { SlackChat } from '../doors/slack/chat.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { apiFailure, doorClient } from './doors.js';
import { inputOf, plugin } from './plugin.js';

const REQUIRES = ['door:slack'];
const text = z.string().min(1).max(40_000);
/** Block Kit blocks, passed to Slack as they are (Slack validates them). */
const blocks = z.array(z.record(z.string(), z.unknown())).max(50).optional();
const ts = z.string().regex(/^\d+\.\d+$/, 'a Slack message ts such as 1700000000.000100');
const channel = z.string().min(1).max(100);

/** Slack's own answers that may pass; every other `ok: false` answer (channel_not_found, …) is final. */
const PASSING = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);

/** The Slack door's client; a refusal (an `ok: false` answer, an HTTP 4xx) fails the step for good. */
async function withSlack<T>(c: KindCall, act: (chat: SlackChat) => Promise<T>): Promise<T> {
  const chat = doorClient(c, 'slack');
  try {
    return await act(chat);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; statusCode?: number; data?: { error?: string } } }).cause;
    if (cause?.code === 'slack_webapi_platform_error') throw new StepFailure((err as Error).message, PASSING.has(cause.data?.error ?? ''));
    throw apiFailure(err, cause?.code === 'slack_webapi_http_error' ? cause.statusCode : undefined);
  }
}

const messageInput = z.strictObject({ channel: channel.optional(), userEmail: z.email().optional(), text, blocks, threadTs: ts.optional() })
  .refine((i) => (i.channel === undefined) !== (i.userEmail === undefined), 'give either channel or userEmail');
export const slackMessage = plugin({
  id: 'slack.message', name: 'Slack message', category: 'saas',
  description: 'Posts a message through the Slack door to a `channel` (id or name the bot is in), or as a direct message to the workspace member with `userEmail`; `threadTs` replies in a thread, `blocks` are Block Kit (`text` is the notification fallback). Output: `{channel, ts}`.',
  input: messageInput, output: z.object({ channel: z.string(), ts: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, messageInput);
    return withSlack(c, async (chat) => {
      let to = i.channel;
      if (i.userEmail) {
        const user = await chat.userByEmail(i.userEmail);
        to = await chat.openDirectMessage(user.id);
      }
      const posted = await chat.postMessage(to!, { text: i.text, blocks: i.blocks as never }, i.threadTs);
      c.note('info', `Posted Slack message ${posted.ts} to ${i.userEmail ? `${i.userEmail} (${posted.channel})` : posted.channel}`);
      return posted;
    });
  },
});

const updateInput = z.strictObject({ channel, ts, text, blocks });
export const slackUpdate = plugin({
  id: 'slack.update', name: 'Update a Slack message', category: 'saas',
  description: 'Replaces the text (and blocks) of a message the bot posted, e.g. one from `slack.message` (`{channel, ts}` from its output). Output: `{ts}`.',
  input: updateInput, output: z.object({ ts: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, updateInput);
    await withSlack(c, (chat) => chat.update(i.channel, i.ts, { text: i.text, blocks: i.blocks as never }));
    c.note('info', `Updated Slack message ${i.ts} in ${i.channel}`);
    return { ts: i.ts };
  },
});

const userInput = z.strictObject({ email: z.email() });
export const slackUser = plugin({
  id: 'slack.user', name: 'Find a Slack user', category: 'saas',
  description: 'The Slack workspace member with an email (`users.lookupByEmail`, scope users:read.email): `{userId, name, timezone}`. No such member fails the step.',
  input: userInput, output: z.object({ userId: z.string(), name: z.string(), timezone: z.string().nullable() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, userInput);
    const user = await withSlack(c, (chat) => chat.userByEmail(i.email));
    return { userId: user.id, name: user.name, timezone: user.timezone };
  },
});

export const SLACK_PLUGINS = [slackMessage, slackUpdate, slackUser];
