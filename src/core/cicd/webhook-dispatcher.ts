import { redact } from '../secrets.js';
import { renderUrl } from '../expressions/templates.js';
import { guardedFetch, OutboundRefused } from '../net/guarded-fetch.js';
import { OutboundPolicy } from '../net/outbound-policy.js';
import { SIGNATURE_HEADER, signPayload } from '../signing.js';
import { DispatchRefused, type CancelJob, type CicdDispatcher, type CicdTarget, type DispatchJob, type DispatchResult } from './dispatcher.js';

const TIMEOUT_MS = 15_000;
const MAX_ANSWER = 64 * 1024;

export interface WebhookDispatcherOptions {
  /** FLOWGATE_WEBHOOK_SECRET: every dispatch and cancel is signed; without it nothing is sent. */
  secret?: string;
  /** FLOWGATE_CICD_WEBHOOK_URL: used when the manifest names no `cicd.url`. */
  defaultUrl?: string;
  /** FLOWGATE_PUBLIC_URL, sent as `flowgateUrl`. */
  flowgateUrl: string;
}

/**
 * The `webhook` provider: POSTs JSON signed for `cicd.dispatch` (`x-flowgate-signature-256: t=…,v1=…`,
 * see core/signing.ts) to the target URL — the manifest's `cicd.url` (may be a `{{ credentials.X }}`
 * template) or FLOWGATE_CICD_WEBHOOK_URL — through the outbound guard. The receiver may answer
 * `{cicdRunId, cicdRunUrl}`.
 */
export class WebhookDispatcher implements CicdDispatcher {
  readonly provider = 'webhook' as const;

  constructor(private readonly options: WebhookDispatcherOptions, private readonly fetchImpl: typeof fetch = guardedFetch(new OutboundPolicy())) {}

  problem(target: CicdTarget, credentials: Record<string, string>): string | undefined {
    if (!this.options.secret) return 'FLOWGATE_WEBHOOK_SECRET is not configured; CI/CD webhooks are only sent signed';
    try {
      this.urlOf(target, credentials);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async dispatch(job: DispatchJob, target: CicdTarget, credentials: Record<string, string>): Promise<DispatchResult> {
    const body = {
      event: 'cicd.dispatch', executionId: job.executionId, flowType: job.flowType, repositoryIdentifier: job.repositoryIdentifier,
      payload: job.payload, statusUrl: job.statusUrl, token: job.token, flowgateUrl: this.options.flowgateUrl,
    };
    const answer = await this.post(`dispatching run ${job.executionId}`, body, target, credentials);
    return resultOf(answer);
  }

  async cancel(job: CancelJob, target: CicdTarget, credentials: Record<string, string>): Promise<void> {
    await this.post(`cancelling run ${job.executionId}`, { event: 'cicd.cancel', executionId: job.executionId, cicdRunId: job.cicdRunId }, target, credentials);
  }

  /** The target URL; errors never show a resolved credential. */
  private urlOf(target: CicdTarget, credentials: Record<string, string>): URL {
    const raw = target.url ?? this.options.defaultUrl;
    if (!raw) throw new DispatchRefused('no webhook URL: set cicd.url in the manifest or FLOWGATE_CICD_WEBHOOK_URL');
    let resolved: unknown;
    try {
      resolved = renderUrl(raw, { credentials });
    } catch (err) {
      throw new DispatchRefused(`cicd.url: ${redact((err as Error).message, credentials)}`);
    }
    let url: URL | undefined;
    try {
      url = typeof resolved === 'string' ? new URL(resolved) : undefined;
    } catch { /* reported below */ }
    if (!url || !/^https?:$/.test(url.protocol)) throw new DispatchRefused('cicd.url does not resolve to an http(s) URL');
    return url;
  }

  private async post(what: string, payload: unknown, target: CicdTarget, credentials: Record<string, string>): Promise<string> {
    const secret = this.options.secret;
    if (!secret) throw new DispatchRefused(`${what}: FLOWGATE_WEBHOOK_SECRET is not configured`);
    const url = this.urlOf(target, credentials);
    // Only the origin is ever shown: the path or query may carry a credential.
    const where = `${what} (webhook ${url.origin})`;
    const body = JSON.stringify(payload);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method: 'POST', body, signal: AbortSignal.timeout(TIMEOUT_MS),
        headers: { 'content-type': 'application/json', 'user-agent': 'Flowgate', [SIGNATURE_HEADER]: signPayload(secret, 'cicd.dispatch', body) },
      });
    } catch (err) {
      // A refused address does not become allowed by retrying.
      if (err instanceof OutboundRefused) throw new DispatchRefused(`${where}: ${redact(err.message, credentials)}`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000}s` : cause?.code ?? cause?.message ?? (err as Error).message;
      throw new Error(`${where}: ${redact(why, credentials)}`);
    }
    const text = (await res.text()).slice(0, MAX_ANSWER);
    if (res.ok) return text;
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    const message = `${where}: HTTP ${res.status}`;
    throw retryable ? new Error(message) : new DispatchRefused(message);
  }
}

/** `{cicdRunId, cicdRunUrl}` from the receiver's answer; anything else is ignored. */
function resultOf(text: string): DispatchResult {
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { return {}; }
  if (!json || typeof json !== 'object') return {};
  const { cicdRunId, cicdRunUrl } = json as Record<string, unknown>;
  const out: DispatchResult = {};
  if (typeof cicdRunId === 'string' || typeof cicdRunId === 'number') out.cicdRunId = String(cicdRunId).slice(0, 500);
  if (typeof cicdRunUrl === 'string') out.cicdRunUrl = cicdRunUrl.slice(0, 2000);
  return out;
}
