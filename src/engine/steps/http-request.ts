import { durableStep } from '../durable-step.js';
import { redact } from '../../core/secrets.js';
import { expressionContext } from '../context.js';
import { StepFailure } from '../step-failure.js';
import { render, renderUrl } from '../../core/expressions/templates.js';
import { OutboundRefused } from '../../core/net/guarded-fetch.js';
import type { StepKind } from './step-kind.js';
import { parseInput, remainingMs } from './step-kind.js';

const MAX_BODY = 1024 * 1024;

/**
 * Calls an HTTP endpoint. Templates are rendered inside the checkpointed step, so values
 * from `credentials` are used for the request only and are redacted from what is kept. The
 * URL is rendered as a URL (values percent-encoded) and called through the outbound guard:
 * a flow or payload never reaches a private or metadata address the operator did not allow.
 */
export const httpRequestStep: StepKind = async (x) => {
  const left = await remainingMs(x);
  const result = await durableStep(async () => {
    const creds = x.deps.credentials;
    let input;
    try {
      const ctx = await expressionContext(x.deps, x.run, true);
      const { url, ...rest } = x.step.with;
      input = parseInput('http.request', { ...(render(rest, ctx) as Record<string, unknown>), ...(url === undefined ? {} : { url: renderUrl(url, ctx) }) });
    } catch (err) {
      throw err instanceof StepFailure ? new StepFailure(redact(err.message, creds), false) : new StepFailure(redact((err as Error).message, creds), false);
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
      res = await x.deps.outboundFetch(input.url, { method: input.method, headers, body, signal: AbortSignal.timeout(Math.min(input.timeoutSeconds * 1000, left)) });
    } catch (err) {
      // A refused address stays refused: no retry.
      if (err instanceof OutboundRefused) return { ok: false as const, final: true, line: redact(`${target} ${err.message}`, creds) };
      const why = (err as Error).name === 'TimeoutError' ? 'timed out' : messageOfCause(err);
      return { ok: false as const, line: redact(`${target} failed: ${why}`, creds) };
    }
    const text = (await res.text()).slice(0, MAX_BODY);
    const contentType = res.headers.get('content-type') ?? '';
    let parsed: unknown = text;
    if (contentType.includes('json')) {
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    }
    const output = JSON.parse(redact(JSON.stringify({ status: res.status, headers: Object.fromEntries(res.headers), body: parsed }), creds));
    const line = `${target} → ${res.status} (${Date.now() - started} ms)`;
    return { ok: res.ok, line, output, status: res.status };
  }, { name: `${x.step.ref}.request#${x.attempt}` });
  x.note(result.ok ? 'info' : 'error', result.line);
  if (!result.ok) throw new StepFailure('output' in result ? `HTTP ${result.status}: ${result.line}` : result.line, !('final' in result && result.final));
  return result.output;
};

function messageOfCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
