import pg from 'pg';
import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

// The workflow platform's key-value store: the rows the kv.* steps of a namespace's executions use.
let server: TestServer;
let db: pg.Pool;
const t: Record<string, string> = {};
const KV = '/api/v1/kv';

beforeAll(async () => {
  server = await startTestServer();
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/prod', { namespace: 'production' });
  await createProject(server, 'acme/other', { namespace: 'other-space' });
  await createProject(server, 'acme/full', { namespace: 'full' });
  t.viewer = await createToken(server, { name: 'viewer', role: 'viewer' });
  t.member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
  t.otherOwner = await createToken(server, { name: 'other-owner', role: 'owner', projects: ['acme/other'] });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const put = (path: string, body: unknown, token?: string | null) => server.call('PUT', `${KV}/${path}`, body, token);
const get = (path: string, token?: string | null) => server.call('GET', `${KV}/${path}`, undefined, token);
const del = (path: string, token?: string | null) => server.call('DELETE', `${KV}/${path}`, undefined, token);
const expectError = (r: { status: number; body: any }, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.code, error: typeof r.body?.error }).toEqual({ status, code, error: 'string' });
};
const audits = async (action: string, targetId: string) =>
  (await db.query('select actor, door, target_type, details from audit_events where action = $1 and target_id = $2 order by at', [action, targetId])).rows;

describe('one key', () => {
  test('PUT new → 201 + Location; PUT again → 200, createdAt kept; GET → the entry; keys may hold slashes', async () => {
    const made = await put('production/app/config/db', { value: { host: 'db.internal', port: 5432 } });
    expect(made.status).toBe(201);
    expect(made.headers.get('location')).toBe('/api/v1/kv/production/app/config/db');
    expect(made.body).toEqual({
      namespace: 'production', key: 'app/config/db', value: { host: 'db.internal', port: 5432 },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), updatedAt: expect.any(String), expiresAt: null,
    });
    const again = await put('production/app/config/db', { value: [1, 'two', null] });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ key: 'app/config/db', value: [1, 'two', null], createdAt: made.body.createdAt });
    expect(Date.parse(again.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(made.body.updatedAt));
    expect((await get('production/app/config/db', t.viewer)).body).toEqual(again.body);
    // URL-encoded slashes name the same key.
    expect((await get('production/app%2Fconfig%2Fdb')).body.value).toEqual([1, 'two', null]);
  });

  test('any JSON value, null included; a ttl sets expiresAt, a PUT without one clears it', async () => {
    for (const value of [null, 0, 'text', true, { nested: { deep: [1] } }]) {
      const r = await put('production/any', { value });
      expect([200, 201]).toContain(r.status);
      expect(r.body.value).toEqual(value);
    }
    const ttl = await put('production/any', { value: 1, ttlSeconds: 3600 });
    expect(Date.parse(ttl.body.expiresAt) - Date.now()).toBeGreaterThan(3_590_000);
    expect(Date.parse(ttl.body.expiresAt) - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect((await put('production/any', { value: 2 })).body.expiresAt).toBeNull();
    expect((await get('production/any')).body.expiresAt).toBeNull();
  });

  test('an expired key is absent at once: GET 404, left out of the list, a PUT creates it again (201)', async () => {
    await put('production/short', { value: 'soon gone', ttlSeconds: 60 });
    await db.query(`update kv_entries set expires_at = now() - interval '1 millisecond' where key = 'short'`);
    expectError(await get('production/short'), 404, 'not_found');
    expect((await server.call('GET', `${KV}/production?prefix=short`)).body).toEqual([]);
    expectError(await del('production/short'), 404, 'not_found');
    await put('production/short', { value: 'x', ttlSeconds: 60 });
    await db.query(`update kv_entries set expires_at = now() - interval '1 millisecond' where key = 'short'`);
    expect((await put('production/short', { value: 'back' })).status).toBe(201);
  });

  test('DELETE → 204 without a body, then 404; absent keys 404', async () => {
    await put('production/gone', { value: 1 });
    const r = await del('production/gone');
    expect(r.status).toBe(204);
    expect(r.body).toBeUndefined();
    expectError(await del('production/gone'), 404, 'not_found');
    expectError(await get('production/gone'), 404, 'not_found');
    expectError(await get('production/never'), 404, 'not_found');
  });

  test('bad keys, a missing value and a ttl out of range → 400 bad_request', async () => {
    expectError(await put('production/a//b', { value: 1 }), 400, 'bad_request');
    expectError(await put('production/a/', { value: 1 }), 400, 'bad_request');
    expectError(await put(`production/${'k'.repeat(256)}`, { value: 1 }), 400, 'bad_request');
    expectError(await put('production/no%20spaces', { value: 1 }), 400, 'bad_request');
    expect((await put(`production/${'k'.repeat(255)}`, { value: 1 })).status).toBe(201);
    const missing = await put('production/x', { ttlSeconds: 5 });
    expectError(missing, 400, 'bad_request');
    expect(missing.body.details).toEqual([expect.objectContaining({ field: 'value', location: 'body' })]);
    expectError(await put('production/x', undefined), 400, 'bad_request');
    expectError(await put('production/x', { value: 1, ttlSeconds: 0 }), 400, 'bad_request');
    expectError(await put('production/x', { value: 1, ttlSeconds: 31_536_001 }), 400, 'bad_request');
    expectError(await put('production/x', { value: 1, ttlSeconds: 1.5 }), 400, 'bad_request');
    expect((await put('production/x', { value: 1, ttlSeconds: 31_536_000 })).status).toBe(201);
    // PostgreSQL's jsonb holds no NUL: refused before it is tried.
    expectError(await put('production/x', { value: { text: 'a\u0000b' } }), 400, 'bad_request');
    expectError(await put('production/x', { value: { 'k\u0000': 1 } }), 400, 'bad_request');
    expectError(await server.call('GET', `${KV}/production?prefix=%00`), 400, 'bad_request');
    expectError(await get('Not_A_Namespace/x'), 404, 'not_found');
  });

  test('a value over 64 KiB → 413 payload_too_large; nothing is written', async () => {
    const r = await put('production/big', { value: 'x'.repeat(70_000) });
    expectError(r, 413, 'payload_too_large');
    expect(r.body.error).toMatch(/65536/);
    expectError(await get('production/big'), 404, 'not_found');
    expect((await put('production/big', { value: 'x'.repeat(60_000) })).status).toBe(201);
  });

  test('10,000 keys in a namespace: a new one → 409 conflict, replacing one still works', async () => {
    await db.query(`insert into kv_entries (repository_identifier, key, value) select 'acme/full', 'n' || g, '1' from generate_series(1, 10000) g`);
    expectError(await put('full/one-more', { value: 1 }), 409, 'conflict');
    expect((await put('full/n1', { value: 2 })).status).toBe(200);
  });
});

describe('list', () => {
  beforeAll(async () => {
    for (const key of ['list/b', 'list/a', 'list/c/deep', 'other/z']) await put(`other-space/${key}`, { value: { key } });
  });

  test('by key, with sizeBytes; prefix, limit and after page; none → []', async () => {
    const all = await server.call('GET', `${KV}/other-space`, undefined, t.viewer);
    expect(all.status).toBe(200);
    expect(all.body.map((e: any) => e.key)).toEqual(['list/a', 'list/b', 'list/c/deep', 'other/z']);
    expect(all.body[0]).toEqual({ key: 'list/a', updatedAt: expect.any(String), expiresAt: null, sizeBytes: expect.any(Number) });
    expect(all.body[0].sizeBytes).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify({ key: 'list/a' })));
    const first = (await server.call('GET', `${KV}/other-space?prefix=list/&limit=2`)).body;
    expect(first.map((e: any) => e.key)).toEqual(['list/a', 'list/b']);
    const next = (await server.call('GET', `${KV}/other-space?prefix=list/&limit=2&after=${encodeURIComponent(first[1].key)}`)).body;
    expect(next.map((e: any) => e.key)).toEqual(['list/c/deep']);
    expect((await server.call('GET', `${KV}/other-space?prefix=none/`)).body).toEqual([]);
  });

  test('limit 1–1,000; unknown parameters → 400', async () => {
    expectError(await server.call('GET', `${KV}/other-space?limit=0`), 400, 'bad_request');
    expectError(await server.call('GET', `${KV}/other-space?limit=1001`), 400, 'bad_request');
    expectError(await server.call('GET', `${KV}/other-space?cursor=x`), 400, 'bad_request');
    expect((await server.call('GET', `${KV}/other-space?limit=1000`)).body).toHaveLength(4);
  });
});

describe('access', () => {
  test('viewers read, editors write: a viewer or a member token writing → 403; no token → 401', async () => {
    expect((await get('production/app/config/db', t.viewer)).status).toBe(200);
    expect((await get('production/app/config/db', t.member)).status).toBe(200);
    expectError(await put('production/v', { value: 1 }, t.viewer), 403, 'forbidden');
    expectError(await put('production/v', { value: 1 }, t.member), 403, 'forbidden');
    expectError(await del('production/app/config/db', t.member), 403, 'forbidden');
    expectError(await get('production/app/config/db', null), 401, 'authentication_required');
    expectError(await put('production/v', { value: 1 }, null), 401, 'authentication_required');
  });

  test('an unknown namespace, or one the caller cannot see → 404 (reads, writes, lists)', async () => {
    expectError(await get('nowhere/k'), 404, 'not_found');
    expectError(await put('nowhere/k', { value: 1 }), 404, 'not_found');
    expectError(await server.call('GET', `${KV}/nowhere`), 404, 'not_found');
    expectError(await get('production/app/config/db', t.otherOwner), 404, 'not_found');
    expectError(await put('production/k', { value: 1 }, t.otherOwner), 404, 'not_found');
    expectError(await del('production/app/config/db', t.otherOwner), 404, 'not_found');
    expectError(await server.call('GET', `${KV}/production`, undefined, t.otherOwner), 404, 'not_found');
    expect((await put('other-space/mine', { value: 1 }, t.otherOwner)).status).toBe(201);
  });

  test('writes are audited as kv.set / kv.deleted, never with the value', async () => {
    await put('production/audited', { value: { secretish: 'hunter2' }, ttlSeconds: 60 });
    await put('production/audited', { value: 2 });
    await del('production/audited');
    const set = await audits('kv.set', 'production/audited');
    expect(set).toEqual([
      { actor: 'token:admin', door: 'rest', target_type: 'kv', details: { namespace: 'production', key: 'audited', created: true, ttlSeconds: 60 } },
      { actor: 'token:admin', door: 'rest', target_type: 'kv', details: { namespace: 'production', key: 'audited', created: false, ttlSeconds: null } },
    ]);
    expect(await audits('kv.deleted', 'production/audited')).toEqual([{ actor: 'token:admin', door: 'rest', target_type: 'kv', details: { namespace: 'production', key: 'audited' } }]);
    expect(JSON.stringify(set)).not.toContain('hunter2');
  });
});

test('the API and the kv.* steps of an execution in the namespace share the rows', async () => {
  await put('production/shared/greeting', { value: { text: 'from the API' } });
  const flow = await server.call('POST', '/api/v1/flows', { yamlContent: `
name: kv-share
namespace: production
tasks:
  - { name: read, type: kv.get, properties: { key: shared/greeting } }
  - { name: write, type: kv.set, dependsOn: [read], properties: { key: shared/reply, value: { text: "got {{ outputs.read.value.text }}" } } }
` });
  expect(flow.status).toBe(201);
  const started = await server.call('POST', `/api/v1/flows/${flow.body.id}/execute`, {});
  expect(started.status).toBe(202);
  const done = await eventually(async () => {
    const r = (await server.call('GET', `/api/v1/executions/${started.body.executionId}`)).body;
    return ['SUCCESS', 'FAILED'].includes(r?.execution?.status) ? r : undefined;
  }, 20_000, 'the execution finishing');
  expect(done.execution.status).toBe('SUCCESS');
  expect(JSON.parse(done.tasks.find((x: any) => x.taskName === 'read').outputs)).toEqual({ value: { text: 'from the API' }, found: true });
  expect((await get('production/shared/reply')).body).toMatchObject({ namespace: 'production', key: 'shared/reply', value: { text: 'got from the API' } });
  // Another namespace holds its own rows.
  expectError(await get('other-space/shared/reply'), 404, 'not_found');
});
