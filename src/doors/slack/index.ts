import { App, type Authorize } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { SlackSettings } from '../../config.js';
import type { Services } from '../../container.js';
import type { Door } from '../door.js';
import { acceptDelivery, registerInboundHandler } from '../inbound.js';
import { boltLogger, SlackChat } from './chat.js';
import { SlackDestination } from './destination.js';
import { slackJobs } from './jobs.js';
import { registerListeners } from './listeners.js';
import { SlackPeople } from './people.js';
import { KoaSlackReceiver } from './receiver.js';

export const SLACK_OFF = 'Slack (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on)';

/**
 * The Slack door: `POST /slack/events` (slash commands, mentions, buttons and modals) through
 * Bolt with a Koa receiver, durable processing of what was asked, and the Slack destination.
 */
export function createSlackDoor(s: Services, settings: SlackSettings, options: { now?: () => number } = {}): Door {
  const log = s.log.child({ door: 'slack' });
  const chat = SlackChat.for(settings, log);
  const client = chat.client;
  const people = new SlackPeople(client, s.identities);
  const destination = new SlackDestination(s, chat, log);
  const receiver = new KoaSlackReceiver({ signingSecret: settings.signingSecret, log, now: options.now });
  const app = new App({ receiver, authorize: authorizeOnce(client, settings.botToken, log), logger: boltLogger(log), convoStore: false });
  registerListeners(app, { s, chat, people, log, command: settings.command, accept: (id, job) => acceptDelivery('slack', id, job) });
  registerInboundHandler('slack', slackJobs({ s, chat, people, destination, command: settings.command }));
  return { name: 'slack', mount: (router) => receiver.mount(router), destination, stop: () => receiver.stop() };
}

/**
 * The bot's token with its ids from one `auth.test` (Bolt uses the ids to ignore the bot's own
 * messages). If Slack cannot be asked, events still flow and the next request asks again.
 */
function authorizeOnce(client: WebClient, botToken: string, log: Logger): Authorize<boolean> {
  let ids: Promise<{ botId?: string; botUserId?: string }> | undefined;
  return async () => {
    ids ??= client.auth.test().then(
      (r) => ({ botId: r.bot_id, botUserId: r.user_id }),
      (err) => {
        log.warn({ err }, 'Slack auth.test failed; the bot user is unknown until it succeeds');
        ids = undefined;
        return {};
      },
    );
    return { botToken, ...(await ids) };
  };
}
