import { createHash, createHmac } from 'node:crypto';
import pg from 'pg';
import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

// Triggers of the workflow platform API (cron and webhook) and the public webhook endpoint.
let server: TestServer;
let db: pg.Pool;
let viewer: string;
let member: string;
let flowId: string;
const PUBLIC_URL = 'https://flowgate.example.test';

const FLOW = (name = 'hook') => `
name: ${name}
namespace: production
inputs:
  customerId: { type: string, required: true }
  env: staging
tasks:
  - { name: say, type: util.log, properties: { message: "customer {{ inputs.customerId }} in {{ inputs.env }}" } }
`;

beforeAll(async () => {
  server = await startTestServer({ env: { FLOWGATE_SCHEDULER_POLL_MS: '300', FLOWGATE_PUBLIC_URL: `${PUBLIC_URL}/` } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/prod', { namespace: 'production' });
  await createProject(server, 'acme/app');
  viewer = await createToken(server, { name: 'viewer', role: 'viewer' });
  member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
  const flow = await server.call('POST', '/api/v1/flows', { yamlContent: FLOW() });
  expect(flow.status).toBe(201);
  flowId = flow.body.id;
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const create = (body: Record<string, unknown>, token?: string) => server.call('POST', '/api/v1/triggers', { flowId, ...body }, token);
const webhook = (body: Record<string, unknown> = {}) => create({ type: 'webhook', ...body });
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');
const sign = (secret: string, raw: string) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

/** POSTs to the public endpoint: no token, the body as given. */
async function hook(key: string, body: string | undefined, headers: Record<string, string> = {}, query = '') {
  const res = await fetch(`${server.url}/api/v1/webhook/${key}${query}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const execution = async (id: string) => (await server.call('GET', `/api/v1/executions/${id}`)).body.execution;
const finished = (id: string) => eventually(async () => {
  const e = await execution(id);
  return ['SUCCESS', 'FAILED'].includes(e?.status) ? e : undefined;
}, 20_000, `execution ${id} finishing`);
const schedules = async () => (await server.call('GET', '/sfp/api/flows/schedules?repositoryIdentifier=acme/prod')).body.schedules as any[];
const metric = async (result: string) => {
  const text = (await server.call('GET', '/metrics', undefined, null)).body as string;
  return Number(new RegExp(`^flowgate_webhook_requests_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};
const audits = async (action: string, id: string) => (await db.query('select actor, door, details from audit_events where action = $1 and target_id = $2', [action, id])).rows;

describe('cron triggers', () => {
  let cronId: string;

  test('create: 201 with Location and the next fire time; it is the schedule trigger-<id>', async () => {
    const r = await create({ type: 'cron', name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', inputs: { customerId: 'c-{{ trigger.type }}' } });
    expect(r.status).toBe(201);
    cronId = r.body.id;
    expect(r.headers.get('location')).toBe(`/api/v1/triggers/${cronId}`);
    expect(r.body).toEqual({
      id: cronId, flowId, namespace: 'production', name: 'nightly', type: 'cron', cron: '0 2 * * *', timezone: 'Europe/Berlin', enabled: true,
      inputs: { customerId: 'c-{{ trigger.type }}' }, lastFiredAt: null, nextFireAt: expect.any(String),
      createdAt: expect.any(String), updatedAt: expect.any(String), createdBy: 'token:admin', updatedBy: 'token:admin',
    });
    // 02:00 in Berlin is 00:00 or 01:00 UTC.
    expect(new Date(r.body.nextFireAt).getUTCHours()).toBeLessThanOrEqual(1);
    expect(Date.parse(r.body.nextFireAt)).toBeGreaterThan(Date.now());
    expect((await schedules()).find((x) => x.name === `trigger-${cronId}`)).toMatchObject({ expression: '0 2 * * *', timezone: 'Europe/Berlin', enabled: true, source: 'trigger', flowType: 'production:hook' });
    expect(await audits('trigger.created', cronId)).toEqual([{ actor: 'token:admin', door: 'rest', details: { type: 'cron', flowId, namespace: 'production', name: 'nightly' } }]);
  });

  test('the schedule changes only through its trigger', async () => {
    expect((await server.call('DELETE', `/api/v1/schedules/trigger-${cronId}`)).status).toBe(400);
    const pause = await server.call('POST', `/sfp/api/flows/schedules/trigger-${cronId}/pause`);
    expect(pause.status).toBe(400);
    expect(pause.body.message).toMatch(/PUT or DELETE \/api\/v1\/triggers\//);
  });

  test('invalid cron, time zone or inputs are 422 by path; missing or foreign fields are 400', async () => {
    const cron = await create({ type: 'cron', cron: '61 * * * *' });
    expect(cron.status).toBe(422);
    expect(cron.body).toMatchObject({ code: 'validation_failed', errors: [expect.objectContaining({ path: 'cron' })] });
    expect((await create({ type: 'cron', cron: '* * *' })).body.errors[0].path).toBe('cron');
    const tz = await create({ type: 'cron', cron: '0 2 * * *', timezone: 'Mars/Olympus', inputs: { customerId: 'x' } });
    expect(tz.status).toBe(422);
    expect(tz.body.errors).toEqual([{ path: 'timezone', message: expect.stringMatching(/unknown time zone/) }]);
    // A cron's inputs do not depend on a request: a required input missing is found now.
    const required = await create({ type: 'cron', cron: '0 2 * * *' });
    expect(required.status).toBe(422);
    expect(required.body.errors).toEqual([expect.objectContaining({ path: 'inputs.customerId' })]);
    expect((await create({ type: 'cron', cron: '0 2 * * *', inputs: { customerId: '{{ trigger.body.x }}' } })).status).toBe(422);
    const syntax = await create({ type: 'cron', cron: '0 2 * * *', inputs: { customerId: '{{ 1 + }}' } });
    expect(syntax.body.errors[0].path).toBe('inputs.customerId');
    const secret = await create({ type: 'cron', cron: '0 2 * * *', inputs: { customerId: '{{ credentials.TOKEN }}' } });
    expect(secret.body.errors).toEqual([{ path: 'inputs.customerId', message: expect.stringMatching(/credentials cannot be used/) }]);
    expect((await create({ type: 'cron' })).body).toMatchObject({ code: 'bad_request', details: [expect.objectContaining({ field: 'cron' })] });
    expect((await create({ type: 'cron', cron: '0 2 * * *', secret: 'x'.repeat(20) })).status).toBe(400);
    expect((await create({ type: 'webhook', timezone: 'UTC' })).status).toBe(400);
    expect((await create({ type: 'hourly' })).status).toBe(400);
    const unknown = await create({ type: 'webhook', flowId: '00000000-0000-7000-8000-000000000000' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toEqual([expect.objectContaining({ path: 'flowId' })]);
    // A manifest flow names the namespace it runs in.
    expect((await create({ type: 'webhook', flowId: 'notifier' })).body.errors).toEqual([expect.objectContaining({ path: 'namespace' })]);
    expect((await create({ type: 'webhook', namespace: 'acme.app' })).body.errors).toEqual([expect.objectContaining({ path: 'namespace' })]);
    expect((await db.query('select count(*)::int as n from triggers')).rows[0].n).toBe(1);
  });

  test('PUT: type and flow immutable (422); a new expression and pause reach the schedule', async () => {
    expect((await server.call('PUT', `/api/v1/triggers/${cronId}`, { type: 'webhook' })).status).toBe(422);
    const moved = await server.call('PUT', `/api/v1/triggers/${cronId}`, { flowId: 'notifier' });
    expect(moved.status).toBe(422);
    expect(moved.body.errors).toEqual([{ path: 'flowId', message: `cannot change (it is ${flowId})` }]);
    expect((await server.call('PUT', `/api/v1/triggers/${cronId}`, { rateLimitPerMinute: 5 })).status).toBe(400);
    expect((await server.call('PUT', `/api/v1/triggers/${cronId}`, { cron: 'never' })).status).toBe(422);
    const r = await server.call('PUT', `/api/v1/triggers/${cronId}`, { type: 'cron', cron: '30 3 * * 1', timezone: null, enabled: false, name: 'weekly' }, undefined);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'weekly', cron: '30 3 * * 1', timezone: 'UTC', enabled: false, nextFireAt: null, inputs: { customerId: 'c-{{ trigger.type }}' } });
    expect((await schedules()).find((x) => x.name === `trigger-${cronId}`)).toMatchObject({ expression: '30 3 * * 1', timezone: 'UTC', enabled: false });
    const on = await server.call('PUT', `/api/v1/triggers/${cronId}`, { enabled: true });
    expect(new Date(on.body.nextFireAt).getUTCDay()).toBe(1);
    expect((await schedules()).find((x) => x.name === `trigger-${cronId}`).enabled).toBe(true);
    expect((await audits('trigger.updated', cronId)).map((a) => a.details.changed)).toEqual([['name', 'enabled', 'cron', 'timezone'], ['enabled']]);
  });

  test('a cron trigger fires once per tick: an execution of type cron with its trigger id and rendered inputs', async () => {
    const t = await create({ type: 'cron', name: 'every-second', cron: '*/1 * * * * *', inputs: { customerId: '{{ trigger.type }}@{{ trigger.scheduledFor }}', env: 'prod' } });
    expect(t.status).toBe(201);
    const ids = await eventually(async () => {
      const list = (await server.call('GET', `/api/v1/executions?flowId=${flowId}&trigger=cron`)).body;
      return list.length ? list.map((e: any) => e.id) : undefined;
    }, 20_000, 'a cron execution');
    expect((await server.call('GET', `/api/v1/triggers/${t.body.id}`)).body.lastFiredAt).toEqual(expect.any(String));
    await server.call('DELETE', `/api/v1/triggers/${t.body.id}`);
    const e = await finished(ids[0]);
    expect(e).toMatchObject({ status: 'SUCCESS', trigger: { type: 'cron', triggerId: t.body.id, by: 'token:admin' }, inputs: { env: 'prod', customerId: expect.stringMatching(/^cron@\d{4}-\d\d-\d\dT/) } });
    // One execution per tick: no two carry the same scheduled time.
    const inputs = await Promise.all(ids.map(async (id: string) => (await execution(id)).inputs.customerId));
    expect(new Set(inputs).size).toBe(inputs.length);
    expect((await schedules()).some((x) => x.name === `trigger-${t.body.id}`)).toBe(false);
  });
});

describe('webhook triggers', () => {
  let key: string;
  let hookId: string;

  test('create: the key and URL show once; only the key\'s SHA-256 is stored', async () => {
    const r = await webhook({ name: 'orders' });
    expect(r.status).toBe(201);
    key = r.body.webhookKey;
    hookId = r.body.id;
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.body).toEqual({
      id: hookId, flowId, namespace: 'production', name: 'orders', type: 'webhook', webhookKey: key, webhookUrl: `${PUBLIC_URL}/api/v1/webhook/${key}`,
      hasSecret: false, rateLimitPerMinute: 60, enabled: true, inputs: null, lastFiredAt: null,
      createdAt: expect.any(String), updatedAt: expect.any(String), createdBy: 'token:admin', updatedBy: 'token:admin',
    });
    const got = await server.call('GET', `/api/v1/triggers/${hookId}`);
    expect(got.body).toMatchObject({ webhookKey: null, webhookUrl: null, hasSecret: false });
    const { rows: [row] } = await db.query('select webhook_key_sha256, secret from triggers where id = $1', [hookId]);
    expect(row).toEqual({ webhook_key_sha256: sha256(key), secret: null });
    const { rows: [{ n }] } = await db.query('select count(*)::int as n from triggers where row_to_json(triggers)::text like $1', [`%${key}%`]);
    expect(n).toBe(0);
    expect(JSON.stringify(await audits('trigger.created', hookId))).not.toContain(key);
  });

  test('a given key of 32–128 URL-safe characters is kept; a taken one is 409, a malformed one 400', async () => {
    const given = 'k'.repeat(32);
    const r = await webhook({ webhookKey: given });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ webhookKey: given, webhookUrl: `${PUBLIC_URL}/api/v1/webhook/${given}` });
    const taken = await webhook({ webhookKey: given });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('conflict');
    expect((await webhook({ webhookKey: 'k'.repeat(31) })).status).toBe(400);
    expect((await webhook({ webhookKey: `${'k'.repeat(40)}!` })).status).toBe(400);
    expect((await webhook({ rateLimitPerMinute: 601 })).status).toBe(400);
    expect((await hook(given, '{"customerId": "given"}')).status).toBe(202);
    expect((await server.call('DELETE', `/api/v1/triggers/${r.body.id}`)).status).toBe(204);
  });

  test('the body is the inputs; the execution shows trigger type webhook with its trigger id', async () => {
    const before = await metric('accepted');
    const r = await hook(key, JSON.stringify({ customerId: 'c-42' }));
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ executionId: expect.any(String), status: 'QUEUED', tasksTotal: 1 });
    expect(r.headers.get('location')).toBe(`/api/v1/executions/${r.body.executionId}`);
    const e = await finished(r.body.executionId);
    expect(e).toMatchObject({ status: 'SUCCESS', flowId, inputs: { customerId: 'c-42', env: 'staging' }, trigger: { type: 'webhook', triggerId: hookId, by: 'token:admin' } });
    const listed = (await server.call('GET', '/api/v1/executions?trigger=webhook')).body;
    expect(listed.find((x: any) => x.id === r.body.executionId)?.trigger).toEqual({ type: 'webhook', by: 'token:admin', triggerId: hookId });
    expect((await server.call('GET', '/api/v1/executions?trigger=manual')).body.some((x: any) => x.id === r.body.executionId)).toBe(false);
    expect((await server.call('GET', `/api/v1/triggers/${hookId}`)).body.lastFiredAt).not.toBeNull();
    expect(await metric('accepted')).toBe(before + 1);
    // Invalid inputs are 422 by path; a body that is not an object cannot be the inputs.
    const missing = await hook(key, '{"env": "x"}');
    expect(missing.status).toBe(422);
    expect(missing.body.errors).toEqual([expect.objectContaining({ path: 'inputs.customerId' })]);
    expect((await hook(key, '[1, 2]')).status).toBe(422);
    expect((await hook(key, '{"customerId":')).status).toBe(400);
    // Authorization is ignored, whatever it holds.
    expect((await hook(key, '{"customerId": "c-43"}', { authorization: 'Bearer nonsense' })).status).toBe(202);
  });

  test('with an inputs template, it is rendered with trigger (body, headers, query) in scope', async () => {
    const put = await server.call('PUT', `/api/v1/triggers/${hookId}`, {
      inputs: { customerId: '{{ trigger.body.customer.id }}', env: '{{ trigger.query.env }}-{{ trigger.headers["x-source"] }}-{{ trigger.type }}' },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ webhookKey: null, webhookUrl: null });
    const r = await hook(key, JSON.stringify({ customer: { id: 'nested-7' } }), { 'x-source': 'shop', cookie: 'session=secret' }, '?env=eu');
    expect(r.status).toBe(202);
    expect((await finished(r.body.executionId)).inputs).toEqual({ customerId: 'nested-7', env: 'eu-shop-webhook' });
    // Credentials and signatures never reach the scope.
    await server.call('PUT', `/api/v1/triggers/${hookId}`, { inputs: { customerId: 'h', headers: '{{ trigger.headers }}' } });
    const seen = await hook(key, '{}', { cookie: 'a=b', 'x-hub-signature-256': 'sha256=00', 'x-trace': 't1' });
    expect(seen.status).toBe(202);
    const headers = (await finished(seen.body.executionId)).inputs.headers;
    expect(headers).toMatchObject({ 'x-trace': 't1', 'content-type': 'application/json' });
    expect(Object.keys(headers)).not.toEqual(expect.arrayContaining(['cookie']));
    expect(headers['x-hub-signature-256']).toBeUndefined();
    expect(headers.authorization).toBeUndefined();
    // A form body is its fields.
    await server.call('PUT', `/api/v1/triggers/${hookId}`, { inputs: { customerId: '{{ trigger.body.who }}' } });
    const form = await hook(key, 'who=form-user&x=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(202);
    expect((await finished(form.body.executionId)).inputs.customerId).toBe('form-user');
    // A template that fails to render is 422 by key.
    const failing = await hook(key, 'plain text', { 'content-type': 'text/plain' });
    expect(failing.status).toBe(422);
    expect(failing.body.errors).toEqual([expect.objectContaining({ path: 'inputs.customerId' })]);
    await server.call('PUT', `/api/v1/triggers/${hookId}`, { inputs: null });
  });

  test('unknown, disabled and deleted keys: the same 404, counted, not audited', async () => {
    const refusals = async () => (await db.query(`select count(*)::int as n from audit_events where action in ('webhook.refused', 'request.refused')`)).rows[0].n;
    const audited = await refusals();
    const before = await metric('not_found');
    const unknown = await hook('x'.repeat(43), '{}');
    expect(unknown).toMatchObject({ status: 404, body: { error: 'webhook not found', code: 'not_found' } });
    expect(Object.keys(unknown.body)).toEqual(['error', 'code']);
    expect((await hook('short', '{}')).body).toEqual(unknown.body);
    await server.call('PUT', `/api/v1/triggers/${hookId}`, { enabled: false });
    const disabled = await hook(key, '{"customerId": "c"}');
    expect(disabled).toMatchObject({ status: 404, body: unknown.body });
    await server.call('PUT', `/api/v1/triggers/${hookId}`, { enabled: true });
    expect(await metric('not_found')).toBe(before + 3);
    expect(await refusals()).toBe(audited);
  });

  test('with a secret, a signature over the raw body is required: 401 audited without or with a wrong one', async () => {
    const secret = 'a-trigger-secret-0123456789';
    const set = await server.call('PUT', `/api/v1/triggers/${hookId}`, { secret });
    expect(set.body.hasSecret).toBe(true);
    expect(JSON.stringify(set.body)).not.toContain(secret);
    expect((await audits('trigger.updated', hookId)).at(-1).details).toEqual({ changed: ['secret'], secret: 'set' });
    const raw = '{"customerId":  "signed"}';
    const none = await hook(key, raw);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('authentication_required');
    expect((await hook(key, raw, { 'x-signature-256': sign('another-secret-0123456789', raw) })).status).toBe(401);
    // The signature covers the exact bytes: re-serialised JSON does not verify.
    expect((await hook(key, raw, { 'x-signature-256': sign(secret, JSON.stringify(JSON.parse(raw))) })).status).toBe(401);
    const refused = await audits('webhook.refused', hookId);
    expect(refused.map((a) => a.details.reason)).toEqual(['signature missing', 'signature does not match', 'signature does not match']);
    expect(refused[0]).toMatchObject({ actor: 'anonymous', door: 'webhook' });
    expect(JSON.stringify(refused)).not.toContain(secret);
    expect((await hook(key, raw, { 'x-signature-256': sign(secret, raw) })).status).toBe(202);
    expect((await hook(key, raw, { 'x-hub-signature-256': sign(secret, raw).toUpperCase().replace('SHA256=', 'sha256=') })).status).toBe(202);
    const removed = await server.call('PUT', `/api/v1/triggers/${hookId}`, { secret: null });
    expect(removed.body.hasSecret).toBe(false);
    expect((await db.query('select secret from triggers where id = $1', [hookId])).rows[0].secret).toBeNull();
    expect((await hook(key, raw)).status).toBe(202);
  });

  test('a body over 1 MiB is 413', async () => {
    const big = JSON.stringify({ customerId: 'x'.repeat(1024 * 1024) });
    const r = await hook(key, big);
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
  });

  test('a repeated Idempotency-Key (or X-GitHub-Delivery) within 24 h answers 200 with the same execution', async () => {
    const first = await hook(key, '{"customerId": "once"}', { 'idempotency-key': 'delivery-1' });
    expect(first.status).toBe(202);
    const again = await hook(key, '{"customerId": "once"}', { 'idempotency-key': 'delivery-1' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ executionId: first.body.executionId, tasksTotal: 1 });
    expect(again.headers.get('location')).toBe(`/api/v1/executions/${first.body.executionId}`);
    const gh = await hook(key, '{"customerId": "gh"}', { 'x-github-delivery': 'abc-123' });
    expect((await hook(key, '{"customerId": "gh"}', { 'x-github-delivery': 'abc-123' })).body.executionId).toBe(gh.body.executionId);
    expect((await hook(key, '{"customerId": "other"}', { 'idempotency-key': 'delivery-2' })).body.executionId).not.toBe(first.body.executionId);
    // A delivery that started nothing does not hold its key.
    expect((await hook(key, '{}', { 'idempotency-key': 'delivery-3' })).status).toBe(422);
    expect((await hook(key, '{"customerId": "fixed"}', { 'idempotency-key': 'delivery-3' })).status).toBe(202);
    // Older than 24 h, a key starts a new execution.
    await db.query(`update webhook_deliveries set created_at = now() - interval '25 hours' where trigger_id = $1`, [hookId]);
    const later = await hook(key, '{"customerId": "once"}', { 'idempotency-key': 'delivery-1' });
    expect(later.status).toBe(202);
    expect(later.body.executionId).not.toBe(first.body.executionId);
    expect((await db.query('select delivery_key from webhook_deliveries where trigger_id = $1', [hookId])).rows.map((r) => r.delivery_key)).not.toContain('delivery-1');
  });

  test('a burst over rateLimitPerMinute is 429 with Retry-After, never a 5xx', async () => {
    const limited = await webhook({ rateLimitPerMinute: 5, inputs: { customerId: 'burst' } });
    expect(limited.body.rateLimitPerMinute).toBe(5);
    const answers = await Promise.all(Array.from({ length: 30 }, () => hook(limited.body.webhookKey, '{}')));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 202 || s === 429)).toBe(true);
    const accepted = statuses.filter((s) => s === 202).length;
    // A fixed window per minute: at most twice the limit if the burst straddles a minute's end.
    expect(accepted).toBeGreaterThanOrEqual(5);
    expect(accepted).toBeLessThanOrEqual(10);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.body.code).toBe('rate_limited');
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    expect((await db.query('select sum(hits)::int as n from webhook_rate_windows where trigger_id = $1', [limited.body.id])).rows[0].n).toBe(30);
    // The sweep forgets past windows and old delivery keys.
    await db.query(`update webhook_rate_windows set window_start = window_start - interval '2 minutes' where trigger_id = $1`, [limited.body.id]);
    await db.query(`update webhook_deliveries set created_at = now() - interval '25 hours' where trigger_id = $1`, [hookId]);
    expect(await server.services.triggers.prune()).toBeGreaterThanOrEqual(2);
    expect((await db.query('select count(*)::int as n from webhook_rate_windows where trigger_id = $1', [limited.body.id])).rows[0].n).toBe(0);
    expect((await db.query('select count(*)::int as n from webhook_deliveries where trigger_id = $1', [hookId])).rows[0].n).toBe(0);
  });

  test('rotate-key: a new key shown once; the old one is 404 at once; a cron trigger has no key (409)', async () => {
    const r = await server.call('POST', `/api/v1/triggers/${hookId}/rotate-key`);
    expect(r.status).toBe(200);
    expect(r.body.webhookKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.body.webhookKey).not.toBe(key);
    expect(r.body.webhookUrl).toBe(`${PUBLIC_URL}/api/v1/webhook/${r.body.webhookKey}`);
    expect((await hook(key, '{"customerId": "old"}')).status).toBe(404);
    expect((await hook(r.body.webhookKey, '{"customerId": "new"}')).status).toBe(202);
    expect(await audits('trigger.key_rotated', hookId)).toHaveLength(1);
    // PUT may set a given key instead: shown in that answer, the previous key dead at once.
    const given = `given-${'g'.repeat(40)}`;
    const put = await server.call('PUT', `/api/v1/triggers/${hookId}`, { webhookKey: given });
    expect(put.body).toMatchObject({ webhookKey: given, webhookUrl: `${PUBLIC_URL}/api/v1/webhook/${given}` });
    expect((await hook(r.body.webhookKey, '{"customerId": "rotated"}')).status).toBe(404);
    key = given;
    expect((await hook(key, '{"customerId": "given"}')).status).toBe(202);
    const cron = (await server.call('GET', `/api/v1/triggers?type=cron`)).body[0];
    expect((await server.call('POST', `/api/v1/triggers/${cron.id}/rotate-key`)).status).toBe(409);
  });

  test('a manifest flow\'s trigger runs in the namespace it names', async () => {
    const r = await create({ type: 'webhook', flowId: 'notifier', namespace: 'acme.app' });
    expect(r.body).toMatchObject({ flowId: 'notifier', namespace: 'acme.app' });
    const started = await hook(r.body.webhookKey, '{"text": "from a webhook"}');
    expect(started.status).toBe(202);
    expect(await finished(started.body.executionId)).toMatchObject({ flowId: 'notifier', namespace: 'acme.app', inputs: { text: 'from a webhook' } });
    // A namespace holding triggers keeps its name.
    const rename = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'], namespace: 'acme-renamed' });
    expect(rename.status).toBe(409);
  });
});

describe('what started the run, in its steps', () => {
  test('steps read trigger.* — a webhook\'s body, headers and query; an execute\'s type and person', async () => {
    const reader = await server.call('POST', '/api/v1/flows', { yamlContent: `
name: reader
namespace: production
tasks:
  - { name: seen, type: util.log, properties: { message: "{{ trigger.type }} {{ trigger.body.order }} {{ trigger.headers['x-source'] }} {{ trigger.query.env }} by {{ trigger.by }}" } }
` });
    expect(reader.status).toBe(201);
    const t = await create({ flowId: reader.body.id, type: 'webhook', name: 'reader', inputs: {} });
    const r = await hook(t.body.webhookKey, JSON.stringify({ order: 'o-7' }), { 'x-source': 'shop' }, '?env=eu');
    expect(r.status).toBe(202);
    expect((await finished(r.body.executionId)).status).toBe('SUCCESS');
    const out = async (id: string) => (await db.query(`select output from step_runs where run_id = $1 and step_ref = 'seen'`, [id])).rows[0].output.message;
    expect(await out(r.body.executionId)).toBe('webhook o-7 shop eu by token:admin');
    // Started by hand: its type and who; a field it does not have fails the step, naming it.
    const plain = await server.call('POST', '/api/v1/flows', { yamlContent: 'name: plain\nnamespace: production\ntasks:\n  - { name: seen, type: util.log, properties: { message: "{{ trigger.type }} by {{ trigger.by }}" } }\n' });
    const e = await server.call('POST', `/api/v1/flows/${plain.body.id}/execute`, {}, member);
    expect((await finished(e.body.executionId)).status).toBe('SUCCESS');
    expect(await out(e.body.executionId)).toBe('manual by dev@acme.io');
    const missing = await server.call('POST', `/api/v1/flows/${reader.body.id}/execute`, {});
    expect(await finished(missing.body.executionId)).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/No such key: body/) });
  });
});

describe('listing, deleting, roles', () => {
  test('list filters by flowId and type', async () => {
    const all = (await server.call('GET', '/api/v1/triggers')).body;
    expect(all.length).toBeGreaterThanOrEqual(4);
    const ofFlow = (await server.call('GET', `/api/v1/triggers?flowId=${flowId}`)).body;
    expect(ofFlow.every((t: any) => t.flowId === flowId)).toBe(true);
    expect((await server.call('GET', '/api/v1/triggers?flowId=notifier')).body.map((t: any) => t.flowId)).toEqual(['notifier']);
    expect((await server.call('GET', '/api/v1/triggers?type=cron')).body.every((t: any) => t.type === 'cron' && 'nextFireAt' in t)).toBe(true);
    expect((await server.call('GET', '/api/v1/triggers?type=webhook')).body.every((t: any) => t.type === 'webhook' && t.webhookKey === null)).toBe(true);
    expect((await server.call('GET', '/api/v1/triggers?type=hourly')).status).toBe(400);
    expect((await server.call('GET', '/api/v1/triggers?colour=red')).status).toBe(400);
  });

  test('roles: a viewer reads, writes are 403 for viewers and members; another namespace\'s trigger is 404', async () => {
    const [t] = (await server.call('GET', `/api/v1/triggers?flowId=${flowId}&type=webhook`)).body;
    expect((await server.call('GET', '/api/v1/triggers', undefined, viewer)).status).toBe(200);
    expect((await server.call('GET', `/api/v1/triggers/${t.id}`, undefined, viewer)).status).toBe(200);
    const count = (await db.query('select count(*)::int as n from triggers')).rows[0].n;
    for (const token of [viewer, member]) {
      expect((await create({ type: 'webhook' }, token)).status).toBe(403);
      expect((await server.call('PUT', `/api/v1/triggers/${t.id}`, { name: 'x' }, token)).status).toBe(403);
      expect((await server.call('DELETE', `/api/v1/triggers/${t.id}`, undefined, token)).status).toBe(403);
      expect((await server.call('POST', `/api/v1/triggers/${t.id}/rotate-key`, undefined, token)).status).toBe(403);
    }
    expect((await db.query('select count(*)::int as n from triggers')).rows[0].n).toBe(count);
    expect((await server.call('GET', '/api/v1/triggers', undefined, null)).status).toBe(401);
    const elsewhere = await createToken(server, { name: 'app-owner', role: 'owner', projects: ['acme/app'] });
    expect((await server.call('GET', `/api/v1/triggers/${t.id}`, undefined, elsewhere)).status).toBe(404);
    expect((await server.call('DELETE', `/api/v1/triggers/${t.id}`, undefined, elsewhere)).status).toBe(404);
    expect((await server.call('GET', '/api/v1/triggers', undefined, elsewhere)).body.map((x: any) => x.namespace)).toEqual(['acme.app']);
    expect((await create({ type: 'webhook' }, elsewhere)).status).toBe(422);
  });

  test('delete: 204, its key is 404 at once, its schedule goes', async () => {
    const w = await webhook({ name: 'short-lived' });
    const c = await create({ type: 'cron', cron: '0 4 * * *', inputs: { customerId: 'c' } });
    expect((await server.call('DELETE', `/api/v1/triggers/${w.body.id}`)).status).toBe(204);
    expect((await server.call('GET', `/api/v1/triggers/${w.body.id}`)).status).toBe(404);
    expect((await server.call('DELETE', `/api/v1/triggers/${w.body.id}`)).status).toBe(404);
    expect((await hook(w.body.webhookKey, '{"customerId": "x"}')).status).toBe(404);
    expect((await server.call('DELETE', `/api/v1/triggers/${c.body.id}`)).status).toBe(204);
    expect((await schedules()).some((x) => x.name === `trigger-${c.body.id}`)).toBe(false);
    expect(await audits('trigger.deleted', c.body.id)).toHaveLength(1);
  });

  test('a schedule whose trigger is gone (its project deleted, say) deletes itself at its next firing', async () => {
    const c = await create({ type: 'cron', cron: '*/1 * * * * *', inputs: { customerId: 'orphan' } });
    await db.query('delete from triggers where id = $1', [c.body.id]);
    await eventually(async () => ((await schedules()).some((x) => x.name === `trigger-${c.body.id}`) ? undefined : true), 15_000, 'the orphan schedule gone');
    const runs = (await db.query(`select count(*)::int as n from runs where schedule_path = $1`, [`trigger-${c.body.id}`])).rows[0].n;
    expect(runs).toBe(0);
  });

  test('deleting a flow deletes its triggers: keys 404, schedules gone', async () => {
    const doc = await server.call('POST', '/api/v1/flows', { yamlContent: FLOW('doomed') });
    const w = await create({ type: 'webhook', flowId: doc.body.id });
    const c = await create({ type: 'cron', flowId: doc.body.id, cron: '0 5 * * *', inputs: { customerId: 'c' } });
    expect((await hook(w.body.webhookKey, '{"customerId": "before"}')).status).toBe(202);
    expect((await schedules()).some((x) => x.name === `trigger-${c.body.id}`)).toBe(true);
    expect((await server.call('DELETE', `/api/v1/flows/${doc.body.id}`)).status).toBe(204);
    expect((await server.call('GET', `/api/v1/triggers?flowId=${doc.body.id}`)).body).toEqual([]);
    expect((await server.call('GET', `/api/v1/triggers/${w.body.id}`)).status).toBe(404);
    expect((await hook(w.body.webhookKey, '{"customerId": "after"}')).status).toBe(404);
    expect((await schedules()).some((x) => x.name === `trigger-${c.body.id}`)).toBe(false);
  });
});
