import pg from 'pg';
import { newId } from '../../src/core/ids.js';
import { createProject, createToken, startTestServer, type TestServer } from '../support/server.js';

// The audit trail over the workflow platform API: one table for every dialect and door, newest first.
let server: TestServer;
let db: pg.Pool;
const t: Record<string, string> = {};
const AUDIT = '/api/v1/audit';

beforeAll(async () => {
  server = await startTestServer();
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/prod', { namespace: 'production' });
  t.member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
  t.viewer = await createToken(server, { name: 'viewer', role: 'viewer' });
  t.scopedOwner = await createToken(server, { name: 'scoped-owner', role: 'owner', projects: ['acme/prod'] });
  // Through the API: kv.set twice, kv.deleted once.
  for (const key of ['a', 'b']) expect((await server.call('PUT', `/api/v1/kv/production/${key}`, { value: 1 })).status).toBe(201);
  expect((await server.call('DELETE', '/api/v1/kv/production/a')).status).toBe(204);
  // Five events of one actor in one instant (paging must hold inside it), one two days old.
  await db.query(`insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
    select gen_random_uuid(), '2026-01-01T00:00:00.123456Z', 'batch@acme.io', 'slack', 'approval.vote', 'approval', 'ap-' || g, null from generate_series(1, 5) g`);
  await db.query(`insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
    values ($1, now() - interval '2 days', 'old@acme.io', 'cli', 'flow.deleted', 'flow', 'f-old', '{"name": "legacy"}')`, [newId()]);
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const audit = async (qs = '', token?: string | null) => {
  const r = await server.call('GET', `${AUDIT}${qs}`, undefined, token);
  expect(r.status).toBe(200);
  return r.body as any[];
};
const expectError = (r: { status: number; body: any }, status: number, code: string) => expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });

test('newest first, in this API\'s shape; details never hold a value', async () => {
  const events = await audit();
  expect(events.length).toBeGreaterThan(5);
  const times = events.map((e) => Date.parse(e.timestamp));
  expect(times).toEqual([...times].sort((a, b) => b - a));
  expect(events[0]).toEqual({
    id: expect.any(String), timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), actor: 'token:admin', door: 'rest',
    action: 'kv.deleted', resourceType: 'kv', resourceId: 'production/a', details: { namespace: 'production', key: 'a' },
  });
  expect(events.find((e) => e.actor === 'batch@acme.io').details).toEqual({});
});

test('filters: actor, action exact or family, resource type or type/id, since as RFC 3339 or a duration', async () => {
  expect((await audit('?actor=batch@acme.io')).map((e) => e.resourceId).sort()).toEqual(['ap-1', 'ap-2', 'ap-3', 'ap-4', 'ap-5']);
  expect((await audit('?action=kv.set')).map((e) => e.resourceId)).toEqual(['production/b', 'production/a']);
  expect((await audit('?action=kv.*')).map((e) => e.action)).toEqual(['kv.deleted', 'kv.set', 'kv.set']);
  expect(await audit('?action=kv')).toEqual([]);
  expect((await audit('?resource=kv')).map((e) => e.resourceId)).toEqual(['production/a', 'production/b', 'production/a']);
  expect((await audit('?resource=kv/production/a')).map((e) => e.action)).toEqual(['kv.deleted', 'kv.set']);
  expect((await audit('?resource=flow')).map((e) => e.resourceId)).toEqual(['f-old']);
  expect((await audit('?actor=old@acme.io&since=24h'))).toEqual([]);
  expect((await audit('?actor=old@acme.io&since=7d')).map((e) => e.action)).toEqual(['flow.deleted']);
  expect((await audit('?actor=batch@acme.io&since=2026-01-01T00:00:01Z'))).toEqual([]);
  expect((await audit('?actor=batch@acme.io&since=2025-12-31T23:59:59.000Z'))).toHaveLength(5);
  expect((await audit('?action=kv.*&actor=token:admin&resource=kv/production/b')).map((e) => e.action)).toEqual(['kv.set']);
});

test('before=<id> pages without gaps or repeats, also inside one instant', async () => {
  const all = await audit('?limit=1000');
  const seen: string[] = [];
  let page = await audit('?limit=2');
  while (page.length) {
    seen.push(...page.map((e) => e.id));
    page = await audit(`?limit=2&before=${page.at(-1).id}`);
  }
  expect(seen).toEqual(all.map((e) => e.id));
  const batch = await audit('?actor=batch@acme.io&limit=2');
  const rest = await audit(`?actor=batch@acme.io&before=${batch[1].id}`);
  expect(rest).toHaveLength(3);
  expect(new Set([...batch, ...rest].map((e) => e.id)).size).toBe(5);
});

test('bad parameters → 400: limit out of 1–1,000, an unreadable since, action or resource, an unknown before', async () => {
  expect(await audit('?limit=1')).toHaveLength(1);
  for (const qs of ['?limit=0', '?limit=1001', '?limit=x', '?since=yesterday', '?action=kv.*.x', '?action=*', '?resource=/x', '?resource=Flow',
    '?before=not-an-id', `?before=${newId()}`, '?unknown=1', '?actor=%00']) {
    expectError(await server.call('GET', `${AUDIT}${qs}`), 400, 'bad_request');
  }
});

test('unscoped admins only: a project-scoped owner, a member or a viewer → 403; no token → 401', async () => {
  expectError(await server.call('GET', AUDIT, undefined, t.scopedOwner), 403, 'forbidden');
  expectError(await server.call('GET', AUDIT, undefined, t.member), 403, 'forbidden');
  expectError(await server.call('GET', AUDIT, undefined, t.viewer), 403, 'forbidden');
  expectError(await server.call('GET', AUDIT, undefined, null), 401, 'authentication_required');
});

test('readiness: 503 "not ready" while draining after a stop began; health answers without the database', async () => {
  expect((await server.call('GET', '/healthz', undefined, null)).body).toEqual({ status: 'ok' });
  expect((await server.call('GET', '/readyz', undefined, null)).body).toEqual({ status: 'ready', checks: { database: 'ok', engine: 'ok' } });
  server.services.lifecycle.draining = true;
  try {
    const r = await server.call('GET', '/readyz', undefined, null);
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: 'not ready', checks: { database: 'ok', engine: 'ok' }, draining: true });
  } finally {
    server.services.lifecycle.draining = false;
  }
  const metrics = (await server.call('GET', '/metrics', undefined, null)).body as string;
  expect(metrics).toMatch(/^flowgate_log_streams 0$/m);
  expect(metrics).toContain('# TYPE flowgate_webhook_requests_total counter');
});
