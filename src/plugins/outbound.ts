import { OutboundRefused } from '../core/net/guarded-fetch.js';
import { redact } from '../core/secrets.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';

const MAX_BODY = 1024 * 1024;

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * One request through the outbound guard, within the step's time: the answer (body parsed when
 * JSON, at most 1 MiB, credentials redacted), or a failure — retryable for the network, final for
 * a refused address.
 */
export async function send(c: KindCall, url: string, init: RequestInit & { timeoutSeconds: number }): Promise<Answer> {
  const left = c.deadline === undefined ? Infinity : c.deadline - Date.now();
  const target = redact(`${init.method ?? 'GET'} ${url}`, c.credentials);
  let res: Response;
  try {
    res = await c.outboundFetch(url, { ...init, headers: { 'user-agent': 'Flowgate', ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(Math.max(1, Math.min(init.timeoutSeconds * 1000, left))) });
  } catch (err) {
    if (err instanceof OutboundRefused) throw new StepFailure(redact(`${target} ${err.message}`, c.credentials), false);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? 'timed out' : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new StepFailure(redact(`${target} failed: ${why}`, c.credentials), true);
  }
  const text = (await res.text()).slice(0, MAX_BODY);
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try { body = JSON.parse(text); } catch { /* keep the text */ }
  }
  c.note(res.ok ? 'info' : 'error', `${target} → ${res.status}`);
  return JSON.parse(redact(JSON.stringify({ status: res.status, headers: Object.fromEntries(res.headers), body }), c.credentials)) as Answer;
}

/** A non-2xx answer fails the step (retryable: the step's retry decides). */
export function requireOk(a: Answer, what: string): void {
  if (a.status < 200 || a.status > 299) throw new StepFailure(`${what}: HTTP ${a.status}`, true);
}
