import type { LogLevel, Logger as BoltLogger } from '@slack/bolt';
import { WebClient, type ChatPostMessageArguments, type ChatUpdateArguments, type ViewsOpenArguments } from '@slack/web-api';
import type { Logger } from 'pino';
import type { SlackSettings } from '../../config.js';
import type { SlackMessage } from './messages.js';
import { apiFetch } from '../api-fetch.js';

/** The Web API client: a few quick retries, never Slack's default half hour of them. */
export function slackClient(settings: SlackSettings, log: Logger): WebClient {
  return new WebClient(settings.botToken, {
    slackApiUrl: settings.apiUrl, logger: boltLogger(log), timeout: 10_000, fetch: apiFetch,
    retryConfig: { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 2000 },
  });
}

const shared = new WeakMap<SlackSettings, SlackChat>();

/** The Slack Web API calls the door and the `slack.*` plugins make; failures say what was being done. */
export class SlackChat {
  constructor(readonly client: WebClient) {}

  /** One per configuration: the door and the plugins share the client (and its request queue). */
  static for(settings: SlackSettings, log: Logger): SlackChat {
    let chat = shared.get(settings);
    if (!chat) shared.set(settings, (chat = new SlackChat(slackClient(settings, log))));
    return chat;
  }

  /** Posts a message (in a thread when `threadTs` is given) and returns its ts. */
  async post(channel: string, msg: SlackMessage, threadTs?: string): Promise<string> {
    return (await this.postMessage(channel, msg, threadTs)).ts;
  }

  /** Posts a message; answers where it went (a DM's channel id when `channel` was a user) and its ts. */
  async postMessage(channel: string, msg: SlackMessage, threadTs?: string): Promise<{ channel: string; ts: string }> {
    const res = await this.call(`posting a message to Slack channel ${channel}${threadTs ? ` (thread ${threadTs})` : ''}`, () =>
      this.client.chat.postMessage({ channel, thread_ts: threadTs, text: msg.text, blocks: msg.blocks, unfurl_links: false, unfurl_media: false } as ChatPostMessageArguments));
    return { channel: res.channel ?? channel, ts: res.ts! };
  }

  /** A workspace member by email (`users.lookupByEmail`, scope users:read.email). */
  async userByEmail(email: string): Promise<{ id: string; name: string; timezone: string | null }> {
    const res = await this.call(`looking up Slack user ${email} (users.lookupByEmail)`, () => this.client.users.lookupByEmail({ email }));
    const u = res.user!;
    return { id: u.id!, name: u.real_name || u.profile?.real_name || u.profile?.display_name || u.name || '', timezone: u.tz ?? null };
  }

  /** The direct message channel with a user (`conversations.open`, scope im:write). */
  async openDirectMessage(userId: string): Promise<string> {
    const res = await this.call(`opening a Slack DM with ${userId} (conversations.open)`, () => this.client.conversations.open({ users: userId }));
    return res.channel!.id!;
  }

  async update(channel: string, ts: string, msg: SlackMessage): Promise<void> {
    await this.call(`updating Slack message ${channel}/${ts}`, () =>
      this.client.chat.update({ channel, ts, text: msg.text, blocks: msg.blocks ?? [] } as ChatUpdateArguments));
  }

  /** A reply only `user` sees. */
  async ephemeral(channel: string, user: string, text: string, threadTs?: string): Promise<void> {
    await this.call(`replying privately to ${user} in Slack channel ${channel}`, () =>
      this.client.chat.postEphemeral({ channel, user, text, thread_ts: threadTs }));
  }

  async openView(triggerId: string, view: Record<string, unknown>): Promise<void> {
    await this.call('opening a Slack modal', () => this.client.views.open({ trigger_id: triggerId, view } as unknown as ViewsOpenArguments));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { data?: { error?: string } }).data?.error;
      throw new Error(`${what}: ${code ?? (err as Error).message}`, { cause: err });
    }
  }
}

/** Bolt's and the Web API client's logging, into Flowgate's pino logger. */
export function boltLogger(log: Logger): BoltLogger {
  let level = 'info' as LogLevel;
  const write = (fn: 'debug' | 'info' | 'warn' | 'error') => (...msg: unknown[]) => {
    const err = msg.find((m) => m instanceof Error);
    const text = msg.filter((m) => m !== err).map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
    if (err) log[fn]({ err }, text || (err as Error).message);
    else log[fn](text);
  };
  return {
    debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'),
    setLevel: (l: LogLevel) => { level = l; },
    getLevel: () => level,
    setName: () => {},
  };
}
