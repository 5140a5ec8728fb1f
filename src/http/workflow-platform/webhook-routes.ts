import type { Services } from '../../container.js';
import { webhookNotFound, type WebhookOutcome } from '../../core/triggers/webhook-receiver.js';
import { AppError, rateLimited } from '../../errors.js';
import { BodyTooLarge, readRaw } from '../body.js';
import { route, type RouteResult } from '../route.js';
import { presentExecutions } from './executions.js';
import { webhookParams, webhookStartedSchema } from './trigger-schemas.js';

/** Bodies over 1 MiB are refused with 413. */
const LIMIT = 1024 * 1024;

/** What `flowgate_webhook_requests_total{result}` calls a refusal. */
function resultOf(err: unknown): string {
  if (err instanceof BodyTooLarge) return 'too_large';
  if (!(err instanceof AppError)) return 'failed';
  return ({ not_found: 'not_found', authentication_required: 'bad_signature', rate_limited: 'rate_limited' } as Record<string, string>)[err.code] ?? 'refused';
}

/**
 * `POST /api/v1/webhook/{key}`: public (the key is the credential; `Authorization` is ignored).
 * Unknown, disabled and deleted keys take one path to the same 404; a known one is counted against
 * its per-minute limit before its body is read, so a burst costs one upsert per request.
 */
export function webhookRoutes(s: Services) {
  const started = async (out: WebhookOutcome): Promise<RouteResult> => {
    const headers = { Location: `/api/v1/executions/${out.executionId}` };
    if (!out.repeated) return { status: 202, headers, body: { executionId: out.executionId, status: 'QUEUED', tasksTotal: out.tasksTotal } };
    // A repeated delivery: the execution it started, as it is now (still being started: queued).
    const run = await s.store.findById(out.executionId);
    const [e] = run ? await presentExecutions(s, [run]) : [];
    return { status: 200, headers, body: { executionId: out.executionId, status: e?.status ?? 'QUEUED', ...(e ? { tasksTotal: e.tasksTotal } : {}) } };
  };

  return [
    route({
      method: 'post', path: '/webhook/{key}', roles: 'public', params: webhookParams,
      summary: 'Start an execution of a webhook trigger\'s flow (no token: the key is the credential)',
      description: 'The body (≤ 1 MiB: JSON → its value, a form → its fields, else text) is the inputs, or `trigger.body` of the trigger\'s inputs template. '
        + 'With a secret, `X-Signature-256` (or `X-Hub-Signature-256`) must be `sha256=<hex HMAC-SHA256(secret, raw body)>`. '
        + 'A repeated `Idempotency-Key` (or `X-GitHub-Delivery`) within 24 h answers 200 with the execution it started.',
      responses: {
        200: { description: 'A repeated delivery: the execution it started', schema: webhookStartedSchema },
        202: { description: '`{executionId, status: "QUEUED", tasksTotal}`', schema: webhookStartedSchema },
        400: 'The body is not valid JSON', 401: 'Missing or wrong signature (the trigger has a secret)', 404: 'Unknown or disabled webhook',
        409: 'The flow is disabled in its namespace', 413: 'Body over 1 MiB', 422: 'Invalid inputs, or a template that failed', 429: 'Over the trigger\'s requests per minute (`Retry-After`)',
      },
      async handler({ params, ctx }) {
        try {
          const t = await s.webhooks.target(params.key);
          if (!t) throw webhookNotFound();
          const wait = await s.webhooks.admit(t);
          if (wait !== null) {
            ctx.set('Retry-After', String(wait));
            throw rateLimited(`More than ${t.rateLimitPerMinute} requests this minute to this webhook; retry in ${wait} s`);
          }
          const raw = await readRaw(ctx, LIMIT);
          const out = await s.webhooks.deliver(t, { raw, contentType: ctx.get('content-type') || undefined, headers: ctx.headers, query: ctx.query, ip: ctx.ip });
          s.metrics.webhookRequests.inc({ result: out.repeated ? 'repeated' : 'accepted' });
          return started(out);
        } catch (err) {
          s.metrics.webhookRequests.inc({ result: resultOf(err) });
          throw err;
        }
      },
    }),
  ];
}
