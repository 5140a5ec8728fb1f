import { z } from 'zod';
import { evaluate } from '../core/expressions/expressions.js';
import { SIGNATURE_HEADER, signPayload } from '../core/signing.js';
import { StepFailure } from '../engine/step-failure.js';
import { Park } from '../executor/kinds.js';
import { requireOk, send, type Answer } from './outbound.js';
import { inputOf, plugin } from './plugin.js';

const url = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
const headers = z.record(z.string(), z.string()).default({});
const seconds = z.number().positive().max(3_600);

const graphqlInput = z.strictObject({ url, query: z.string().min(1), variables: z.record(z.string(), z.unknown()).default({}), headers, operationName: z.string().optional(), timeoutSeconds: seconds.default(30) });
export const httpGraphql = plugin({
  id: 'http.graphql', name: 'GraphQL request', category: 'protocol',
  description: 'Sends a GraphQL query or mutation; its `data` is the output. An answer with `errors`, or a non-2xx one, fails the step.',
  input: graphqlInput, output: z.object({ data: z.unknown() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, graphqlInput, { credentials: true, url: true });
    const a = await send(c, i.url, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...i.headers },
      body: JSON.stringify({ query: i.query, variables: i.variables, ...(i.operationName ? { operationName: i.operationName } : {}) }), timeoutSeconds: i.timeoutSeconds,
    });
    const body = (a.body ?? {}) as { data?: unknown; errors?: { message?: string }[] };
    if (Array.isArray(body.errors) && body.errors.length) throw new StepFailure(`GraphQL errors: ${body.errors.map((e) => e.message ?? JSON.stringify(e)).join('; ')}`, false);
    requireOk(a, 'GraphQL request');
    if (typeof a.body !== 'object' || a.body === null || !('data' in a.body)) throw new StepFailure('GraphQL answer without data', false);
    return { data: body.data ?? null };
  },
});

const webhookInput = z.strictObject({ url, event: z.string().min(1).max(100), payload: z.unknown(), secret: z.string().min(16, 'at least 16 characters').optional(), headers, timeoutSeconds: seconds.default(30) });
export const webhookSend = plugin({
  id: 'webhook.send', name: 'Signed webhook', category: 'protocol',
  description: `POSTs \`{event, runId, sentAt, payload}\` as JSON; with a \`secret\` (a credential) signed as Flowgate signs its callbacks (\`${SIGNATURE_HEADER}: t=…,v1=…\`, purpose \`webhook.send\`). Non-2xx fails (retried per the step's retry).`,
  input: webhookInput, output: z.object({ status_code: z.number() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, webhookInput, { credentials: true, url: true });
    const body = JSON.stringify({ event: i.event, runId: c.run.id, sentAt: new Date().toISOString(), payload: i.payload ?? null });
    const a = await send(c, i.url, {
      method: 'POST', body, timeoutSeconds: i.timeoutSeconds,
      headers: { 'content-type': 'application/json', 'x-flowgate-event': i.event, ...(i.secret ? { [SIGNATURE_HEADER]: signPayload(i.secret, 'webhook.send', body) } : {}), ...i.headers },
    });
    requireOk(a, `webhook ${i.event}`);
    return { status_code: a.status };
  },
});

const waitInput = z.strictObject({ url, condition: z.string().min(1), intervalSeconds: z.number().min(1).max(3_600).default(10), timeoutSeconds: z.number().min(1).max(7 * 86_400).default(600), headers, requestTimeoutSeconds: seconds.default(30) });
interface Polling { until: string; polls: number }
export const httpWaitUntil = plugin({
  id: 'http.wait_until', name: 'Wait until (HTTP poll)', category: 'protocol',
  description: 'GETs a URL every `intervalSeconds` until a CEL `condition` on `response` (`status`, `headers`, `body`) holds; the run is released between polls (durable). The last response is the output; past `timeoutSeconds` the step fails.',
  input: waitInput, output: z.object({ status: z.number(), headers: z.record(z.string(), z.string()), body: z.unknown(), polls: z.number() }), credentials: true,
  run: async (c) => {
    const i = inputOf(c, waitInput, { credentials: true, url: true });
    const remembered = c.prior?.status === 'waiting' ? (c.prior.output as Polling | null) : null;
    let until = remembered?.until ? Date.parse(remembered.until) : Date.now() + i.timeoutSeconds * 1000;
    if (c.deadline !== undefined) until = Math.min(until, c.deadline);
    const polls = (remembered?.polls ?? 0) + 1;
    const response: Answer = await send(c, i.url, { method: 'GET', headers: i.headers, timeoutSeconds: i.requestTimeoutSeconds });
    let met: unknown;
    try {
      met = evaluate(i.condition, { ...c.context, response });
    } catch (err) {
      throw new StepFailure(`with.condition: ${(err as Error).message}`, false);
    }
    if (met === true) return { ...response, polls };
    const next = Date.now() + i.intervalSeconds * 1000;
    if (next > until) throw new StepFailure(`condition "${i.condition}" not met within ${i.timeoutSeconds}s (${polls} polls; last status ${response.status})`, false);
    throw new Park(next, `poll:${new Date(next).toISOString()}`, 'waiting', { until: new Date(until).toISOString(), polls } satisfies Polling);
  },
});

export const PROTOCOLS = [httpGraphql, webhookSend, httpWaitUntil];
