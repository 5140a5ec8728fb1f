import { createHmac } from 'node:crypto';
import type { Callback } from '../../db/entities/run.js';
import type { Destination } from './destination.js';
import type { Notice, NoticeOutcome } from './notice.js';

export const SIGNATURE_HEADER = 'x-flowgate-signature-256';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Delivers notices to a run's callback destination. Webhooks are handled here; chat
 * destinations (Slack, GitHub, Azure DevOps) report that their door is not configured.
 */
export class Notifier {
  private readonly destinations = new Map<string, Destination>();

  constructor(private readonly webhookSecret: string | undefined, private readonly fetchImpl: typeof fetch = fetch) {}

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
    if (secret) headers[SIGNATURE_HEADER] = signBody(secret, body);
    const res = await this.fetchImpl(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`posting ${notice.event} for ${notice.runId ? `run ${notice.runId}` : 'an approval'} to webhook ${new URL(url).origin}: HTTP ${res.status}`);
    return { delivered: true };
  }
}
