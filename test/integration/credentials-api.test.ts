import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CredentialResolver } from '../../src/core/credentials/credential-resolver.js';
import { CredentialStore } from '../../src/core/credentials/credential-store.js';
import { parseKey } from '../../src/core/credentials/encryption-keys.js';
import { reencryptCredentials } from '../../src/core/credentials/key-rotation.js';
import { Keyring } from '../../src/core/credentials/keyring.js';
import { EDIT_ROLES } from '../../src/http/workflow-platform/roles.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

// Stored credentials of the workflow platform API: write-only values, one source per name, resolved
// env → global → namespace when a step runs, redacted everywhere, re-encrypted on key rotation.
const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../../dist/cli/index.js');
const KEY_A = randomBytes(32).toString('hex');
const KEY_B = randomBytes(32).toString('base64');
const ID_A = parseKey(KEY_A)!.id;
const ID_B = parseKey(KEY_B)!.id;
const NS_VALUE = `ns-${randomBytes(12).toString('hex')}`;
const GLOBAL_VALUE = `gl-${randomBytes(12).toString('hex')}`;
const ENV_VALUE = `env-${randomBytes(12).toString('hex')}`;
const CRED = '/api/v1/credentials';

let server: TestServer;
let db: pg.Pool;
const target = new Recorder();
const t: Record<string, string> = {};
/** Every response body seen by this file: the values must be in none. */
const seen: string[] = [];

const api = async (method: string, urlPath: string, body?: unknown, token?: string | null) => {
  const r = await server.call(method, urlPath, body, token);
  seen.push(JSON.stringify(r.body ?? null), JSON.stringify([...r.headers]));
  return r;
};
const expectError = (r: { status: number; body: any }, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(typeof r.body.error).toBe('string');
};
const audits = async (action: string, id: string) => (await db.query('select actor, door, details from audit_events where action = $1 and target_id = $2', [action, id])).rows;
const metric = async (source: string) => {
  const text = (await api('GET', '/metrics', undefined, null)).body as string;
  return Number(new RegExp(`^flowgate_credential_resolutions_total\\{source="${source}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};

beforeAll(async () => {
  await target.start();
  // Echoes what it got, so redaction of step outputs is exercised; /fail answers 500 with it too.
  target.respond((r) => ({ status: r.path.startsWith('/fail') ? 500 : 200, body: { path: r.path, authorization: r.headers.authorization, got: r.json } }));
  server = await startTestServer({ env: { FLOWGATE_ENCRYPTION_KEY: KEY_A, FLOWGATE_CREDENTIAL_OPS_TOKEN: ENV_VALUE } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app', { namespace: 'acme.app' });
  await createProject(server, 'acme/other', { namespace: 'other-space' });
  t.viewer = await createToken(server, { name: 'viewer', role: 'viewer' });
  t.member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
  t.scoped = await createToken(server, { name: 'app-owner', role: 'owner', email: 'owner@acme.io', projects: ['acme/app'] });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await target.stop();
});

const META = ['createdAt', 'createdBy', 'description', 'id', 'name', 'namespace', 'type', 'updatedAt', 'updatedBy'];
const ids: Record<string, string> = {};

describe('writing and reading credentials', () => {
  test('POST: 201 with Location and the metadata only; audited without the value', async () => {
    const r = await api('POST', CRED, { name: 'NS_TOKEN', value: NS_VALUE, namespace: 'acme.app', type: 'token', description: 'the app API' });
    expect(r.status).toBe(201);
    ids.ns = r.body.id;
    expect(r.headers.get('location')).toBe(`${CRED}/${ids.ns}`);
    expect(Object.keys(r.body).sort()).toEqual(META);
    expect(r.body).toMatchObject({ name: 'NS_TOKEN', namespace: 'acme.app', type: 'token', description: 'the app API', createdBy: 'token:admin', updatedBy: 'token:admin' });
    expect(r.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(await audits('credential.created', ids.ns)).toEqual([{ actor: 'token:admin', door: 'rest', details: { name: 'NS_TOKEN', namespace: 'acme.app', type: 'token' } }]);

    const g = await api('POST', CRED, { name: 'GLOBAL_TOKEN', value: GLOBAL_VALUE });
    expect(g.status).toBe(201);
    ids.global = g.body.id;
    expect(g.body).toMatchObject({ name: 'GLOBAL_TOKEN', namespace: null, type: 'secret', description: '' });

    const [row] = (await db.query('select key_id, length(nonce) as nonce, ciphertext, length(tag) as tag from credentials where id = $1', [ids.ns])).rows;
    expect(row).toMatchObject({ key_id: ID_A, nonce: 12, tag: 16 });
    expect(row.ciphertext.toString('utf8')).not.toContain(NS_VALUE);
  });

  test('GET list, by namespace and by id: metadata, never a value', async () => {
    const all = await api('GET', CRED);
    expect(all.status).toBe(200);
    expect(all.body.map((c: any) => c.name)).toEqual(['GLOBAL_TOKEN', 'NS_TOKEN']);
    expect((await api('GET', `${CRED}?namespace=acme.app`)).body.map((c: any) => c.name)).toEqual(['NS_TOKEN']);
    expect((await api('GET', `${CRED}?namespace=other-space`)).body).toEqual([]);
    expectError(await api('GET', `${CRED}?namespace=nowhere`), 404, 'not_found');
    const one = await api('GET', `${CRED}/${ids.ns}`);
    expect(one.body).toEqual(all.body[1]);
    expectError(await api('GET', `${CRED}/0190a5b2-0000-7000-8000-000000000000`), 404, 'not_found');
    expectError(await api('GET', `${CRED}/not-an-id`), 404, 'not_found');
    expectError(await api('GET', CRED, undefined, null), 401, 'authentication_required');
  });

  test('invalid bodies: 400 bad_request naming the field; an unknown namespace 422', async () => {
    const bad = async (body: Record<string, unknown>, field: string) => {
      const r = await api('POST', CRED, { name: 'OK_NAME', value: 'v', namespace: 'acme.app', ...body });
      expectError(r, 400, 'bad_request');
      expect(r.body.details.map((d: any) => `${d.field}: ${d.message}`).join('\n')).toContain(field);
    };
    await bad({ name: '9LIVES' }, 'name');
    await bad({ name: 'has-dash' }, 'name');
    await bad({ name: `A${'x'.repeat(128)}` }, 'name');
    await bad({ type: 'apikey' }, 'type');
    await bad({ value: '' }, 'value');
    await bad({ value: 'x'.repeat(64 * 1024 + 1) }, 'value');
    await bad({ value: 'é'.repeat(32 * 1024 + 1) }, 'value');
    await bad({ extra: true }, 'extra');
    await bad({ value: undefined }, 'value');
    const r = await api('POST', CRED, { name: 'OK_NAME', value: 'v', namespace: 'nowhere' });
    expectError(r, 422, 'validation_failed');
    const max = await api('POST', CRED, { name: 'BIG', value: 'x'.repeat(64 * 1024), namespace: 'acme.app' });
    expect(max.status).toBe(201);
    expect((await api('DELETE', `${CRED}/${max.body.id}`)).status).toBe(204);
  });

  test('409: a name taken in its namespace, set by the operator, or taken by a global (and the reverse)', async () => {
    expectError(await api('POST', CRED, { name: 'NS_TOKEN', value: 'again', namespace: 'acme.app' }), 409, 'conflict');
    const env = await api('POST', CRED, { name: 'OPS_TOKEN', value: 'shadow', namespace: 'acme.app' });
    expectError(env, 409, 'conflict');
    expect(env.body.error).toMatch(/FLOWGATE_CREDENTIAL_OPS_TOKEN/);
    expectError(await api('POST', CRED, { name: 'OPS_TOKEN', value: 'shadow' }), 409, 'conflict');
    const global = await api('POST', CRED, { name: 'GLOBAL_TOKEN', value: 'shadow', namespace: 'other-space' });
    expectError(global, 409, 'conflict');
    expect(global.body.error).toMatch(/global credential/);
    expectError(await api('POST', CRED, { name: 'GLOBAL_TOKEN', value: 'again' }), 409, 'conflict');
    expectError(await api('POST', CRED, { name: 'NS_TOKEN', value: 'over all' }), 409, 'conflict');
    // The same name in another namespace is another credential.
    const other = await api('POST', CRED, { name: 'NS_TOKEN', value: 'other-space-value', namespace: 'other-space' });
    expect(other.status).toBe(201);
    ids.other = other.body.id;
  });

  test('PUT: value, type and description change; name and namespace are fixed; audited without the value', async () => {
    const before = (await api('GET', `${CRED}/${ids.ns}`)).body;
    const r = await api('PUT', `${CRED}/${ids.ns}`, { value: NS_VALUE, description: 'rotated', name: 'NS_TOKEN', namespace: 'acme.app' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: ids.ns, name: 'NS_TOKEN', namespace: 'acme.app', type: 'token', description: 'rotated' });
    expect(Date.parse(r.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(before.updatedAt));
    const kept = await api('PUT', `${CRED}/${ids.ns}`, { type: 'password' });
    expect(kept.body).toMatchObject({ type: 'password', description: 'rotated' });
    const renamed = await api('PUT', `${CRED}/${ids.ns}`, { name: 'OTHER' });
    expectError(renamed, 422, 'validation_failed');
    expect(renamed.body.errors).toEqual([{ path: 'name', message: 'cannot change (it is NS_TOKEN)' }]);
    expectError(await api('PUT', `${CRED}/${ids.ns}`, { namespace: 'other-space' }), 422, 'validation_failed');
    expectError(await api('PUT', `${CRED}/${ids.global}`, { namespace: 'acme.app' }), 422, 'validation_failed');
    expectError(await api('PUT', `${CRED}/${ids.ns}`, { value: '' }), 400, 'bad_request');
    expect((await audits('credential.updated', ids.ns)).map((a) => a.details)).toEqual([
      { name: 'NS_TOKEN', namespace: 'acme.app', type: 'token', changed: ['value', 'description'] },
      { name: 'NS_TOKEN', namespace: 'acme.app', type: 'password', changed: ['type'] },
    ]);
  });

  test('DELETE: 204 without a body, then 404; audited', async () => {
    const made = await api('POST', CRED, { name: 'TEMP', value: 'temporary-value', namespace: 'acme.app' });
    const r = await api('DELETE', `${CRED}/${made.body.id}`);
    expect(r.status).toBe(204);
    expect(r.body).toBeUndefined();
    expectError(await api('GET', `${CRED}/${made.body.id}`), 404, 'not_found');
    expectError(await api('DELETE', `${CRED}/${made.body.id}`), 404, 'not_found');
    expect(await audits('credential.deleted', made.body.id)).toEqual([{ actor: 'token:admin', door: 'rest', details: { name: 'TEMP', namespace: 'acme.app', type: 'secret' } }]);
  });
});

describe('who may do what', () => {
  test('a viewer reads the metadata and cannot write', async () => {
    expect((await api('GET', CRED, undefined, t.viewer)).status).toBe(200);
    expect((await api('GET', `${CRED}/${ids.ns}`, undefined, t.viewer)).status).toBe(200);
    expectError(await api('POST', CRED, { name: 'V', value: 'value', namespace: 'acme.app' }, t.viewer), 403, 'forbidden');
    expectError(await api('PUT', `${CRED}/${ids.ns}`, { description: 'x' }, t.viewer), 403, 'forbidden');
    expectError(await api('DELETE', `${CRED}/${ids.ns}`, undefined, t.viewer), 403, 'forbidden');
  });

  test('writes need an editor role', async () => {
    const r = await api('POST', CRED, { name: 'BY_MEMBER', value: 'value', namespace: 'acme.app' }, t.member);
    if ((EDIT_ROLES as readonly string[]).includes('member')) expect(r.status).toBe(201);
    else expectError(r, 403, 'forbidden');
  });

  test('a project-scoped editor: its namespace only, sees globals, cannot write them', async () => {
    expectError(await api('GET', `${CRED}/${ids.other}`, undefined, t.scoped), 404, 'not_found');
    expectError(await api('PUT', `${CRED}/${ids.other}`, { description: 'x' }, t.scoped), 404, 'not_found');
    expectError(await api('DELETE', `${CRED}/${ids.other}`, undefined, t.scoped), 404, 'not_found');
    expectError(await api('GET', `${CRED}?namespace=other-space`, undefined, t.scoped), 404, 'not_found');
    expect((await api('GET', CRED, undefined, t.scoped)).body.map((c: any) => `${c.namespace}/${c.name}`)).toEqual(['null/GLOBAL_TOKEN', 'acme.app/NS_TOKEN']);
    expectError(await api('POST', CRED, { name: 'MINE', value: 'value' }, t.scoped), 403, 'forbidden');
    expectError(await api('POST', CRED, { name: 'MINE', value: 'value', namespace: 'other-space' }, t.scoped), 422, 'validation_failed');
    expectError(await api('PUT', `${CRED}/${ids.global}`, { value: 'hijack' }, t.scoped), 403, 'forbidden');
    expectError(await api('DELETE', `${CRED}/${ids.global}`, undefined, t.scoped), 403, 'forbidden');
    const mine = await api('POST', CRED, { name: 'MINE', value: 'scoped-value', namespace: 'acme.app' }, t.scoped);
    expect(mine.status).toBe(201);
    expect(mine.body.createdBy).toBe('owner@acme.io');
  });
});

const FLOW = `
name: call-api
namespace: acme.app
inputs:
  target: { type: string, required: true }
  path: echo
tasks:
  - name: call
    type: http.request
    properties:
      method: POST
      url: "{{ inputs.target }}/{{ inputs.path }}/\${NS_TOKEN}"
      headers: { authorization: "Bearer \${NS_TOKEN}" }
      body: { global: "\${GLOBAL_TOKEN}", env: "\${OPS_TOKEN}" }
`;

const execute = async (flowId: string, inputs: Record<string, unknown>) => {
  const r = await api('POST', `/api/v1/flows/${flowId}/execute`, { inputs });
  expect(r.status).toBe(202);
  const id = r.body.executionId ?? r.body.id;
  return eventually(async () => {
    const e = await api('GET', `/api/v1/executions/${id}`);
    return ['SUCCESS', 'FAILED'].includes(e.body?.execution?.status) ? { id, ...e.body } : undefined;
  }, 30_000, `execution ${id} finishing`);
};

describe('flows use stored credentials', () => {
  let flowId: string;

  test('a run receives env, global and namespace values; no response, output, log, audit row or error holds them', async () => {
    const before = { env: await metric('env'), global: await metric('global'), namespace: await metric('namespace') };
    const flow = await api('POST', '/api/v1/flows', { yamlContent: FLOW });
    expect(flow.status).toBe(201);
    flowId = flow.body.id;
    const ok = await execute(flowId, { target: target.url });
    expect({ status: ok.execution.status, error: ok.execution.error, task: ok.tasks[0].error }).toEqual({ status: 'SUCCESS', error: null, task: undefined });
    const got = target.requests.find((r) => r.path === `/echo/${NS_VALUE}`)!;
    expect(got.headers.authorization).toBe(`Bearer ${NS_VALUE}`);
    expect(got.json).toEqual({ global: GLOBAL_VALUE, env: ENV_VALUE });
    const output = JSON.parse(ok.tasks[0].outputs);
    expect(output.body).toEqual({ path: '/echo/***', authorization: 'Bearer ***', got: { global: '***', env: '***' } });

    const failed = await execute(flowId, { target: target.url, path: 'fail' });
    expect(failed.execution.status).toBe('FAILED');
    expect(failed.tasks[0].error).toMatch(/500/);
    expect(failed.tasks[0].error).toContain('***');
    for (const id of [ok.id, failed.id]) {
      const logs = await api('GET', `/api/v1/executions/${id}/logs`);
      expect(logs.status).toBe(200);
      expect(JSON.stringify(logs.body)).toContain('***');
    }
    expect(await metric('env')).toBe(before.env + 2);
    expect(await metric('global')).toBe(before.global + 2);
    expect(await metric('namespace')).toBe(before.namespace + 2);
    const metrics = (await api('GET', '/metrics', undefined, null)).body as string;
    expect(metrics).not.toMatch(/flowgate_credential_resolutions_total\{[^}]*(NS_TOKEN|GLOBAL_TOKEN)/);
  });

  test('validate warns of a credential nothing sets for the namespace; a run naming it fails `credential X not found`', async () => {
    const yaml = FLOW.replace('name: call-api', 'name: call-missing').replace('\${OPS_TOKEN}', '\${NOPE_TOKEN}');
    const checked = await api('POST', '/api/v1/flows/validate', { yamlContent: yaml });
    expect(checked.status).toBe(200);
    expect(checked.body.valid).toBe(true);
    expect(checked.body.warnings).toEqual([{ path: 'tasks[0].properties', message: 'credential NOPE_TOKEN is not set for namespace acme.app (FLOWGATE_CREDENTIAL_NOPE_TOKEN, a global credential or one of the namespace)' }]);
    // MINE is acme.app's own: resolvable there, not in other-space.
    const mine = yaml.replace('\${NOPE_TOKEN}', '\${MINE}');
    expect((await api('POST', '/api/v1/flows/validate', { yamlContent: mine })).body.warnings).toEqual([]);
    const elsewhere = await api('POST', '/api/v1/flows/validate', { yamlContent: mine.replace('namespace: acme.app', 'namespace: other-space') });
    expect(elsewhere.body.warnings.map((w: { message: string }) => w.message)).toEqual(['credential MINE is not set for namespace other-space (FLOWGATE_CREDENTIAL_MINE, a global credential or one of the namespace)']);
    const flow = await api('POST', '/api/v1/flows', { yamlContent: yaml });
    expect(flow.status).toBe(201);
    const run = await execute(flow.body.id, { target: target.url });
    expect(run.execution.status).toBe('FAILED');
    expect(run.tasks[0].error).toBe('credential NOPE_TOKEN not found');
  });

  test('the values appear in no table row and no response of this file', async () => {
    const tables = (await db.query(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`)).rows.map((r) => r.table_name as string);
    expect(tables).toEqual(expect.arrayContaining(['credentials', 'audit_events', 'step_runs', 'runs']));
    for (const value of [NS_VALUE, GLOBAL_VALUE, ENV_VALUE]) {
      for (const table of tables) {
        const [{ n }] = (await db.query(`select count(*)::int as n from "${table}" x where x::text like '%' || $1 || '%'`, [value])).rows;
        expect({ table, n }).toEqual({ table, n: 0 });
      }
      for (const body of seen) expect(body).not.toContain(value);
    }
  });

  test('key rotation: rows under key A decrypt with B current and A previous, are re-encrypted to B; then A can go', async () => {
    const store = new CredentialStore(server.services.orm);
    const a = parseKey(KEY_A)!;
    const b = parseKey(KEY_B)!;
    const both = new Keyring({ current: b, previous: [a] });
    const resolve = (ring: Keyring) => new CredentialResolver({}, store, ring, () => undefined).forStep('acme/app', { h: '{{ credentials.NS_TOKEN }}', g: '{{ credentials["GLOBAL_TOKEN"] }}' });
    // "Restarted" with B current and A previous: A's rows still decrypt.
    expect(await resolve(both)).toEqual({ NS_TOKEN: NS_VALUE, GLOBAL_TOKEN: GLOBAL_VALUE });
    const count = Number((await db.query('select count(*) from credentials')).rows[0].count);
    const rotated = await reencryptCredentials(store, both);
    expect(rotated).toEqual({ reencrypted: count, current: count, absentKeys: {}, unreadable: 0 });
    expect((await db.query('select distinct key_id from credentials')).rows).toEqual([{ key_id: ID_B }]);
    // A dropped: B alone decrypts everything.
    expect(await resolve(new Keyring({ current: b, previous: [] }))).toEqual({ NS_TOKEN: NS_VALUE, GLOBAL_TOKEN: GLOBAL_VALUE });

    // This server has only A: the rows are under a key it lacks, and the step fails saying so.
    const lost = await execute(flowId, { target: target.url });
    expect(lost.execution.status).toBe('FAILED');
    expect(lost.tasks[0].error).toMatch(new RegExp(`credential (NS_TOKEN|GLOBAL_TOKEN) is encrypted under key ${ID_B}, which is neither FLOWGATE_ENCRYPTION_KEY nor in FLOWGATE_ENCRYPTION_KEYS_PREVIOUS`));
    // The server's sweep cannot move them back: it names the absent key.
    expect(await server.services.credentials.reencrypt()).toEqual({ reencrypted: 0, current: 0, absentKeys: { [ID_B]: count }, unreadable: 0 });
  });

  test('credentials rotate-key: re-encrypts under the current key and prints counts only', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const run = (env: Record<string, string>) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('node', [CLI, 'credentials', 'rotate-key'], { env: { ...process.env, DATABASE_URL: server.services.config.databaseUrl!, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
    });
    const count = Number((await db.query('select count(*) from credentials')).rows[0].count);
    // Without B among the keys, nothing moves and the absent key is named (exit 1).
    const missing = await run({ FLOWGATE_ENCRYPTION_KEY: KEY_A });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain(`${count} credential(s) under key ${ID_B}, which is not configured`);
    const back = await run({ FLOWGATE_ENCRYPTION_KEY: KEY_A, FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: `${KEY_B}` });
    expect(back).toMatchObject({ code: 0, stderr: '' });
    expect(back.stdout).toBe(`Re-encrypted ${count} credential(s) under key ${ID_A}; ${count} now under it.\n`);
    for (const value of [NS_VALUE, GLOBAL_VALUE, KEY_A, KEY_B]) expect(back.stdout + missing.stdout + missing.stderr).not.toContain(value);
    expect((await db.query('select distinct key_id from credentials')).rows).toEqual([{ key_id: ID_A }]);
    const bad = await run({ FLOWGATE_ENCRYPTION_KEY: 'too-short' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/FLOWGATE_ENCRYPTION_KEY: must be 32 bytes/);
    expect(bad.stderr).not.toContain('too-short');
    // Under A again, the server runs the flow.
    expect((await execute(flowId, { target: target.url })).execution.status).toBe('SUCCESS');
  });
});
