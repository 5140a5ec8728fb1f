import { createHmac } from 'node:crypto';
import type { Callback } from '../../db/entities/run.js';

/** What Flowgate tells a run's destination. */
export interface Notice {
  event: 'run.message' | 'run.finished' | 'approval.requested' | 'approval.decided';
  runId?: string | null;
  taskType?: string;
  repositoryIdentifier?: string | null;
  approval?: Record<string, unknown>;
  status?: string;
  message?: string;
  result?: Record<string, unknown>;
  error?: string | null;
}

export interface NoticeOutcome {
  delivered: boolean;
  /** Why nothing was delivered, when it was not. */
  reason?: string;
}

export const SIGNATURE_HEADER = 'x-flowgate-signature-256';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Delivers notices to a run's callback destination. Webhooks are handled here; chat
 * destinations (Slack, GitHub, Azure DevOps) report that their door is not configured.
 */
export class Notifier {
  constructor(private readonly webhookSecret: string | undefined, private readonly fetchImpl: typeof fetch = fetch) {}

  async notify(callback: Callback | null | undefined, notice: Notice, secret = this.webhookSecret): Promise<NoticeOutcome> {
    if (!callback || callback.type === 'none') return { delivered: false, reason: 'the run has no callback destination' };
    if (callback.type !== 'webhook') return { delivered: false, reason: `no ${callback.type} integration is configured on this server` };
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
