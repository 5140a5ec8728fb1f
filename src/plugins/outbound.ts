import type { z } from 'zod';
import { render, renderUrl } from '../core/expressions/templates.js';
import { OutboundRefused } from '../core/net/guarded-fetch.js';
import { redact } from '../core/secrets.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';

const MAX_BODY = 1024 * 1024;

/**
 * The input of a plugin that calls out, rendered with the credentials: its `url` as a URL (values
 * percent-encoded, as `http.request` does), the rest as usual. Errors never show a credential.
 */
export function outboundInput<S extends z.ZodType>(c: KindCall, schema: S): z.infer<S> {
  const ctx = { ...c.context, credentials: c.credentials };
  let rendered: unknown;
  try {
    const { url, ...rest } = c.step.with;
    rendered = { ...(render(rest, ctx) as Record<string, unknown>), ...(url === undefined ? {} : { url: renderUrl(url, ctx) }) };
  } catch (err) {
    throw new StepFailure(redact((err as Error).message, c.credentials), false);
  }
  const parsed = schema.safeParse(rendered);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StepFailure(redact(`invalid input for ${c.step.type} step: ${why}`, c.credentials), false);
  }
  return parsed.data;
}

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
