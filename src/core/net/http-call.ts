import { render, renderUrl } from '../expressions/templates.js';
import { parseStepInput } from '../registry/step-inputs.js';
import { redact } from '../secrets.js';
import { OutboundRefused } from './guarded-fetch.js';

const MAX_BODY = 1024 * 1024;

/** What an `http.request` step did, for the engine to record: its log line and output, or why it failed. */
export type HttpCallResult =
  | { ok: true; line: string; output: unknown; status: number }
  /** A non-2xx answer: the output is kept with the failure. */
  | { ok: false; line: string; output: unknown; status: number; retryable: true }
  /** No answer: a network failure or timeout (retryable), a refused address or a bad input (final). */
  | { ok: false; line: string; retryable: boolean };

/**
 * The request of an `http.request` step, shared by both engines. Templates are rendered here with
 * the credentials, which are used for the request only and redacted from everything kept; the URL
 * is rendered as a URL (values percent-encoded) and called through the outbound guard.
 */
export async function callHttp(step: { with: Record<string, unknown> }, o: {
  context: Record<string, unknown>; credentials: Record<string, string>; fetch: typeof fetch; timeLeftMs: number;
  /** Aborts the request: its run was cancelled (Engine v2). */
  stop?: AbortSignal;
}): Promise<HttpCallResult> {
  const creds = o.credentials;
  let input;
  try {
    const ctx = { ...o.context, credentials: creds };
    const { url, ...rest } = step.with;
    input = parseStepInput('http.request', { ...(render(rest, ctx) as Record<string, unknown>), ...(url === undefined ? {} : { url: renderUrl(url, ctx) }) });
  } catch (err) {
    return { ok: false, line: redact((err as Error).message, creds), retryable: false };
  }
  const target = redact(`${input.method} ${input.url}`, creds);
  const headers: Record<string, string> = { 'user-agent': 'Flowgate', ...input.headers };
  let body: string | undefined;
  if (input.body !== undefined && input.method !== 'GET' && input.method !== 'HEAD') {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (typeof input.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const started = Date.now();
  let res: Response;
  try {
    const timeout = AbortSignal.timeout(Math.max(1, Math.min(input.timeoutSeconds * 1000, o.timeLeftMs)));
    res = await o.fetch(input.url, { method: input.method, headers, body, signal: o.stop ? AbortSignal.any([timeout, o.stop]) : timeout });
  } catch (err) {
    if (o.stop?.aborted) return { ok: false, line: redact(`${target} abandoned: the run was cancelled`, creds), retryable: false };
    // A refused address stays refused: no retry.
    if (err instanceof OutboundRefused) return { ok: false, line: redact(`${target} ${err.message}`, creds), retryable: false };
    const why = (err as Error).name === 'TimeoutError' ? 'timed out' : messageOfCause(err);
    return { ok: false, line: redact(`${target} failed: ${why}`, creds), retryable: true };
  }
  const { text, cut } = await readCapped(res, MAX_BODY);
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try { parsed = JSON.parse(text); } catch { /* keep the text */ }
  }
  const output = JSON.parse(redact(JSON.stringify({ status: res.status, headers: Object.fromEntries(res.headers), body: parsed }), creds));
  const line = `${target} → ${res.status} (${Date.now() - started} ms${cut ? `; body cut at ${MAX_BODY / 1024 / 1024} MiB` : ''})`;
  return res.ok ? { ok: true, line, output, status: res.status } : { ok: false, line, output, status: res.status, retryable: true };
}

/**
 * The body's first `max` bytes as text. Beyond that it is not read: the connection is closed, so
 * a huge or endless answer costs neither memory nor the step's time.
 */
async function readCapped(res: Response, max: number): Promise<{ text: string; cut: boolean }> {
  if (!res.body) return { text: '', cut: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: Buffer.concat(chunks).toString('utf8'), cut: false };
    if (size + value.length > max) {
      chunks.push(value.subarray(0, max - size));
      await reader.cancel();
      return { text: Buffer.concat(chunks).toString('utf8'), cut: true };
    }
    chunks.push(value);
    size += value.length;
  }
}

function messageOfCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
