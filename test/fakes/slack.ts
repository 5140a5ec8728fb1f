import { createHmac } from 'node:crypto';
import http from 'node:http';

/**
 * A stand-in for Slack in tests: the Web API methods Flowgate calls, answered and recorded
 * (what the real WebClient sends: form fields with JSON-encoded values, or JSON), and helpers
 * that sign inbound requests exactly as Slack does.
 */
export interface SlackCall {
  method: string;
  /** Form fields or JSON, with JSON-encoded fields (blocks, view, …) decoded. */
  body: Record<string, any>;
  authorization?: string;
  /** What the fake answered (a posted message's `ts`, say). */
  response: Record<string, any>;
  at: number;
}

export class FakeSlack {
  readonly calls: SlackCall[] = [];
  /** Slack user id → profile (users.info, users.lookupByEmail); unknown users answer user_not_found / users_not_found. */
  readonly users = new Map<string, { email?: string; name?: string; tz?: string }>();
  /** Channel ids that do not exist (chat.postMessage and chat.update answer channel_not_found). */
  readonly missingChannels = new Set<string>();
  url = '';
  private server?: http.Server;
  private readonly holds: { method: string; where: (body: Record<string, any>) => boolean; seen: number; waiting: (() => void)[] }[] = [];
  private ts = 0;
  private views = 0;

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const method = (req.url ?? '').replace(/^\/api\//, '').replace(/\?.*$/, '');
        const body = parse(Buffer.concat(chunks).toString('utf8'), req.headers['content-type'] ?? '');
        const respond = () => {
          const response = this.answer(method, body);
          this.calls.push({ method, body, authorization: req.headers.authorization, response, at: Date.now() });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(response));
        };
        const held = this.holds.find((h) => h.method === method && h.where(body));
        if (!held) return respond();
        held.seen += 1;
        held.waiting.push(respond);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** The SLACK_API_URL to give Flowgate. */
  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  /**
   * A Slack that hangs: calls to `method` matching `where` get no answer until `release()` (then
   * each is answered, and later ones at once). `seen()` counts the calls held.
   */
  hold(method: string, where: (body: Record<string, any>) => boolean = () => true): { seen(): number; release(): void } {
    const h = { method, where, seen: 0, waiting: [] as (() => void)[] };
    this.holds.push(h);
    return {
      seen: () => h.seen,
      release: () => {
        this.holds.splice(this.holds.indexOf(h), 1);
        for (const respond of h.waiting.splice(0)) respond();
      },
    };
  }

  user(id: string, email: string, name = email.split('@')[0], tz?: string): this {
    this.users.set(id, { email, name, tz });
    return this;
  }

  /** The DM channel `conversations.open` answers for a user (stable per user, as Slack's is). */
  dmOf(userId: string): string {
    return `D${userId.replace(/^U/, '')}`;
  }

  to(method: string, where: (body: Record<string, any>) => boolean = () => true): SlackCall[] {
    return this.calls.filter((c) => c.method === method && where(c.body));
  }

  /** Waits until a call to `method` matching `where` was made, and returns the latest such call. */
  async waitFor(method: string, where: (body: Record<string, any>) => boolean = () => true, timeoutMs = 20_000): Promise<SlackCall> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.to(method, where).at(-1);
      if (found) return found;
      if (Date.now() > until) throw new Error(`fake Slack: no ${method} call matching within ${timeoutMs} ms; saw ${this.calls.map((c) => c.method).join(', ') || 'nothing'}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    for (const h of this.holds.splice(0)) for (const respond of h.waiting.splice(0)) respond();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private answer(method: string, body: Record<string, any>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://acme.slack.com/', team: 'Acme', user: 'flowgate', team_id: 'T0ACME', user_id: 'U0BOT', bot_id: 'B0BOT' };
      case 'chat.postMessage': {
        if (this.missingChannels.has(body.channel)) return { ok: false, error: 'channel_not_found' };
        const ts = `1700000000.${String(++this.ts).padStart(6, '0')}`;
        return { ok: true, channel: body.channel, ts, message: { type: 'message', text: body.text, ts, thread_ts: body.thread_ts, bot_id: 'B0BOT' } };
      }
      case 'chat.update':
        if (this.missingChannels.has(body.channel)) return { ok: false, error: 'channel_not_found' };
        return { ok: true, channel: body.channel, ts: body.ts, text: body.text };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `1700000000.${String(++this.ts).padStart(6, '0')}` };
      case 'views.open':
        return { ok: true, view: { ...body.view, id: `V${String(++this.views).padStart(4, '0')}` } };
      case 'users.info': {
        const u = this.users.get(body.user);
        if (!u) return { ok: false, error: 'user_not_found' };
        return { ok: true, user: { id: body.user, name: u.name, real_name: u.name, profile: { email: u.email, real_name: u.name, display_name: u.name } } };
      }
      case 'users.lookupByEmail': {
        const found = [...this.users].find(([, u]) => u.email?.toLowerCase() === String(body.email ?? '').toLowerCase());
        if (!found) return { ok: false, error: 'users_not_found' };
        const [id, u] = found;
        return { ok: true, user: { id, team_id: 'T0ACME', name: u.name, real_name: u.name, tz: u.tz ?? 'America/Los_Angeles', tz_label: 'Pacific Standard Time', tz_offset: -28800, profile: { email: u.email, real_name: u.name, display_name: u.name } } };
      }
      case 'conversations.open': {
        const user = String(body.users ?? '').split(',')[0];
        if (!this.users.has(user)) return { ok: false, error: 'user_not_found' };
        return { ok: true, channel: { id: this.dmOf(user) } };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

function parse(raw: string, contentType: string): Record<string, any> {
  if (!raw) return {};
  if (/json/i.test(contentType)) return JSON.parse(raw);
  const out: Record<string, any> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    out[k] = /^[[{]/.test(v) ? tryJson(v) : v;
  }
  return out;
}

const tryJson = (v: string) => {
  try { return JSON.parse(v); } catch { return v; }
};

// ---- inbound: requests as Slack sends them ----

export interface SendOptions {
  /** Seconds since the epoch (now by default). */
  timestamp?: number;
  retryNum?: number;
  /** Signs with this secret instead (a forged request). */
  secret?: string;
  signature?: string;
}

/** What Slack puts in `x-slack-signature`. */
export const slackSignature = (secret: string, timestamp: number, body: string) =>
  `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;

let counter = 0;
const next = (prefix: string) => `${prefix}${Date.now()}${++counter}`;

/** Sends signed requests to Flowgate's `/slack/events` as Slack would. */
export class SlackSender {
  constructor(private readonly baseUrl: string, private readonly secret: string) {}

  async send(body: string, contentType: string, opts: SendOptions = {}) {
    const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': opts.signature ?? slackSignature(opts.secret ?? this.secret, timestamp, body),
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    };
    if (opts.retryNum !== undefined) {
      headers['x-slack-retry-num'] = String(opts.retryNum);
      headers['x-slack-retry-reason'] = 'http_timeout';
    }
    const res = await fetch(`${this.baseUrl}/slack/events`, { method: 'POST', headers, body });
    const text = await res.text();
    let json: any;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    return { status: res.status, text, json };
  }

  /** A slash command (form fields). */
  command(text: string, who: { user: string; channel: string; command?: string; triggerId?: string }, opts?: SendOptions) {
    return this.send(slashCommandBody(text, who), 'application/x-www-form-urlencoded', opts);
  }

  /** An interaction (form field `payload` holding JSON). */
  interaction(payload: Record<string, unknown>, opts?: SendOptions) {
    return this.send(interactionBody(payload), 'application/x-www-form-urlencoded', opts);
  }

  /** An Events API callback (JSON). */
  event(body: Record<string, unknown>, opts?: SendOptions) {
    return this.send(JSON.stringify(body), 'application/json', opts);
  }
}

export function slashCommandBody(text: string, who: { user: string; channel: string; command?: string; triggerId?: string }): string {
  return new URLSearchParams({
    token: 'verification-token-unused', team_id: 'T0ACME', team_domain: 'acme', channel_id: who.channel, channel_name: 'ops',
    user_id: who.user, user_name: who.user.toLowerCase(), command: who.command ?? '/flowgate', text, api_app_id: 'A0FLOWGATE',
    is_enterprise_install: 'false', response_url: 'https://hooks.slack.com/commands/T0ACME/1/abc', trigger_id: who.triggerId ?? next('trigger.'),
  }).toString();
}

export const interactionBody = (payload: Record<string, unknown>) => new URLSearchParams({ payload: JSON.stringify(payload) }).toString();

/** A click on a button of a message Flowgate posted (as recorded by the fake). */
export function buttonClick(input: { actionId: string; value: string; user: string; channel: string; message: { ts: string; thread_ts?: string; blocks?: unknown }; triggerId?: string }) {
  const actionTs = `${Math.floor(Date.now() / 1000)}.${String(++counter).padStart(6, '0')}`;
  return {
    type: 'block_actions',
    user: { id: input.user, username: input.user.toLowerCase(), name: input.user.toLowerCase(), team_id: 'T0ACME' },
    api_app_id: 'A0FLOWGATE', token: 'verification-token-unused',
    container: { type: 'message', message_ts: input.message.ts, channel_id: input.channel, is_ephemeral: false, thread_ts: input.message.thread_ts },
    trigger_id: input.triggerId ?? next('trigger.'),
    team: { id: 'T0ACME', domain: 'acme' },
    channel: { id: input.channel, name: 'ops' },
    message: { type: 'message', ts: input.message.ts, thread_ts: input.message.thread_ts, bot_id: 'B0BOT', blocks: input.message.blocks },
    response_url: 'https://hooks.slack.com/actions/T0ACME/1/abc',
    actions: [{ action_id: input.actionId, block_id: 'flowgate_approval', type: 'button', value: input.value, action_ts: actionTs }],
  };
}

/** Submitting the reject modal Flowgate opened (as recorded by the fake's views.open). */
export function viewSubmission(input: { view: Record<string, any>; viewId: string; user: string; reason: string }) {
  return {
    type: 'view_submission',
    team: { id: 'T0ACME', domain: 'acme' },
    user: { id: input.user, username: input.user.toLowerCase(), name: input.user.toLowerCase(), team_id: 'T0ACME' },
    api_app_id: 'A0FLOWGATE', token: 'verification-token-unused', trigger_id: next('trigger.'),
    view: {
      ...input.view, id: input.viewId, team_id: 'T0ACME', hash: next('hash.'),
      state: { values: { reason: { reason: { type: 'plain_text_input', value: input.reason } } } },
    },
    response_urls: [],
  };
}

/** An `app_mention` event callback. */
export function mentionEvent(input: { text: string; user: string; channel: string; threadTs?: string; eventId?: string }) {
  const ts = `${Math.floor(Date.now() / 1000)}.${String(++counter).padStart(6, '0')}`;
  return {
    token: 'verification-token-unused', team_id: 'T0ACME', api_app_id: 'A0FLOWGATE', type: 'event_callback',
    event: { type: 'app_mention', user: input.user, text: input.text, ts, channel: input.channel, event_ts: ts, ...(input.threadTs ? { thread_ts: input.threadTs } : {}) },
    event_id: input.eventId ?? next('Ev'), event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ team_id: 'T0ACME', user_id: 'U0BOT', is_bot: true, is_enterprise_install: false }],
  };
}
