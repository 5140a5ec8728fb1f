import type { Callback } from '../../db/entities/run.js';
import { guardedFetch, OutboundRefused } from '../net/guarded-fetch.js';
import { OutboundPolicy } from '../net/outbound-policy.js';
import { SIGNATURE_HEADER, signPayload, type SignaturePurpose } from '../signing.js';
import type { Destination } from './destination.js';
import type { Notice, NoticeOutcome } from './notice.js';

export { SIGNATURE_HEADER };

/** An external approval's decision is signed for its own purpose, so a run notice cannot pass for one. */
export const purposeOf = (notice: Notice): SignaturePurpose => (notice.event === 'approval.decided' ? 'approval.decision' : 'run.notice');

/**
 * Delivers notices to a run's callback destination. Webhooks are handled here, through the
 * outbound guard (their URL is the caller's choice; without an explicit fetch nothing but
 * public addresses is reached); chat destinations are their doors'.
 */
export class Notifier {
  private readonly destinations = new Map<string, Destination>();

  constructor(private readonly webhookSecret: string | undefined, private readonly fetchImpl: typeof fetch = guardedFetch(new OutboundPolicy())) {}

  /** A door makes its kind of destination available. */
  register(destination: Destination): void {
    this.destinations.set(destination.type, destination);
  }

  async notify(callback: Callback | null | undefined, notice: Notice, secret = this.webhookSecret): Promise<NoticeOutcome> {
    if (!callback || callback.type === 'none') return { delivered: false, reason: 'the run has no callback destination' };
    if (callback.type !== 'webhook') {
      const destination = this.destinations.get(callback.type);
      if (!destination) return { delivered: false, reason: `no ${callback.type} integration is configured on this server` };
      return destination.notify(callback, notice);
    }
    const url = typeof callback.webhook?.url === 'string' ? callback.webhook.url : undefined;
    if (!url) return { delivered: false, reason: 'the webhook callback has no url' };
    const body = JSON.stringify(notice);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'Flowgate' };
    if (secret) headers[SIGNATURE_HEADER] = signPayload(secret, purposeOf(notice), body);
    const what = `posting ${notice.event} for ${notice.runId ? `run ${notice.runId}` : 'an approval'} to webhook ${originOf(url)}`;
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      // A refusal is final and says why; other failures are left as they are for the caller to retry.
      if (err instanceof OutboundRefused) throw new OutboundRefused(`${what}: ${err.message}`);
      throw err;
    }
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status}`);
    return { delivered: true };
  }
}

/** Only the origin is shown: a callback's path or query may carry a token. */
function originOf(url: string): string {
  try { return new URL(url).origin; } catch { return '(invalid URL)'; }
}
