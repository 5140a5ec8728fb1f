import type Router from '@koa/router';
import { ReceiverMultipleAckError, type App, type Receiver, type ReceiverEvent } from '@slack/bolt';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { BodyTooLarge, readRaw } from '../../http/body.js';
import { verifySlackSignature } from './verify.js';

export const EVENTS_PATH = '/slack/events';
const BODY_LIMIT = 1024 * 1024;
/** Slack waits 3 s for an answer; listeners still running at this point continue after it. */
const ANSWER_WITHIN_MS = 2500;

export interface ReceiverOptions {
  signingSecret: string;
  log: Logger;
  /** The clock the signature's timestamp is checked against (milliseconds). */
  now?: () => number;
}

/**
 * Moves Slack's requests from Flowgate's Koa router into Bolt: verifies every request first
 * (401 and nothing else otherwise), answers url_verification, and hands the rest to
 * `App.processEvent`. The answer goes out once the listeners acknowledged and returned (or
 * 2.5 s after arrival if they acknowledged but are still busy), so a listener that stores a
 * delivery before acknowledging has it stored before Slack hears back.
 */
export class KoaSlackReceiver implements Receiver {
  private app?: App;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: ReceiverOptions) {}

  init(app: App): void {
    this.app = app;
  }

  /** Flowgate's HTTP server carries the route; there is nothing to start. */
  async start(): Promise<void> {}

  /** Waits (up to `timeoutMs`) for listeners still working after their answer. */
  async stop(timeoutMs = 5000): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  mount(router: Router): void {
    router.post(EVENTS_PATH, (ctx) => this.handle(ctx));
  }

  private async handle(ctx: Context): Promise<void> {
    const { log, signingSecret, now = Date.now } = this.options;
    let raw: Buffer;
    try {
      raw = await readRaw(ctx, BODY_LIMIT);
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) throw err;
      ctx.status = 413;
      ctx.body = { error: 'Slack request body too large' };
      return;
    }
    const verified = verifySlackSignature(raw, ctx.req.headers, signingSecret, now());
    if (!verified.ok) {
      log.warn({ reason: verified.reason }, 'refused a Slack request that failed verification');
      ctx.status = 401;
      ctx.body = { error: 'Slack request verification failed' };
      return;
    }
    const body = parseBody(raw.toString('utf8'), ctx.get('content-type'));
    if (!body) {
      ctx.status = 400;
      ctx.body = { error: 'Slack request body could not be read' };
      return;
    }
    if (body.ssl_check) {
      ctx.status = 200;
      return;
    }
    if (body.type === 'url_verification') {
      ctx.body = { challenge: body.challenge };
      return;
    }
    await this.dispatch(ctx, body);
  }

  private async dispatch(ctx: Context, body: Record<string, any>): Promise<void> {
    let acked = false;
    let answer: unknown;
    const retry = ctx.get('x-slack-retry-num');
    const event: ReceiverEvent = {
      body,
      retryNum: retry ? Number(retry) : undefined,
      retryReason: ctx.get('x-slack-retry-reason') || undefined,
      ack: async (response?: unknown) => {
        if (acked) throw new ReceiverMultipleAckError();
        acked = true;
        answer = response;
      },
    };
    let failure: unknown;
    let settled = false;
    const processing = this.app!.processEvent(event).then(
      () => { settled = true; },
      (err) => {
        settled = true;
        failure = err;
        this.options.log.error({ err, type: body.type }, 'a Slack listener failed');
      },
    );
    this.inFlight.add(processing);
    void processing.finally(() => this.inFlight.delete(processing));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([processing, new Promise((r) => { timer = setTimeout(r, ANSWER_WITHIN_MS); })]);
    clearTimeout(timer);

    if (acked) {
      ctx.status = 200;
      ctx.body = answer ?? '';
      return;
    }
    if (failure) {
      ctx.status = 500;
      ctx.body = { error: 'processing the Slack request failed' };
      return;
    }
    this.options.log.warn({ type: body.type, settled }, settled ? 'no listener handled a Slack request' : 'a Slack request was not acknowledged in time');
    ctx.status = settled ? 404 : 503;
    ctx.body = { error: settled ? `Flowgate does not handle Slack requests of type ${String(body.type ?? body.command ?? 'unknown')}` : 'the Slack request was not handled in time' };
  }
}

/** Slash commands are form fields; interactions are a form field `payload` holding JSON; events are JSON. */
export function parseBody(raw: string, contentType: string): Record<string, any> | undefined {
  try {
    if (/json/i.test(contentType)) {
      const parsed = JSON.parse(raw);
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined;
    }
    const form = Object.fromEntries(new URLSearchParams(raw));
    return typeof form.payload === 'string' ? JSON.parse(form.payload) : form;
  } catch {
    return undefined;
  }
}
