import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import YAML from 'yaml';
import { PLUGINS, pluginFor } from '../../src/plugins/catalogue.js';
import { verifySignature } from '../../src/core/signing.js';
import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startRun, startTestServer, type TestServer, waitForRun } from '../support/server.js';

const FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/plugin-flows');
const HMAC_KEY = 'plugin-test-hmac-key';
const GQL_TOKEN = 'graphql-token-9f8e7d';
const HOOK_SECRET = 'webhook-secret-0123456789';
const PD_KEY = 'pd-routing-key-31337';
const OG_KEY = 'og-api-key-424242';
const JIRA_TOKEN = 'jira-api-token-777';

let server: TestServer;
let db: pg.Pool;
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  server = await startTestServer({ flows: FLOWS, env: { FLOWGATE_CREDENTIAL_HMAC_KEY: HMAC_KEY, FLOWGATE_CREDENTIAL_GQL_TOKEN: GQL_TOKEN, FLOWGATE_CREDENTIAL_HOOK_SECRET: HOOK_SECRET, FLOWGATE_OUTBOUND_ALLOW: '127.0.0.0/8',
    PAGERDUTY_EVENTS_URL: `${target.url}/pd/v2/enqueue`, OPSGENIE_API_URL: `${target.url}/og/`, FLOWGATE_CREDENTIAL_PD_KEY: PD_KEY, FLOWGATE_CREDENTIAL_OG_KEY: OG_KEY, FLOWGATE_CREDENTIAL_JIRA_TOKEN: JIRA_TOKEN } });
  let statusPolls = 0;
  target.respond((r) => {
    if (r.path === '/graphql') return { body: { data: { deploys: [{ id: 'd1' }] } } };
    if (r.path === '/graphql-bad') return { body: { errors: [{ message: 'Cannot query field "nope"' }] } };
    if (r.path === '/status') return { body: { state: ++statusPolls >= 3 ? 'ready' : 'pending' } };
    if (r.path === '/pd/v2/enqueue') return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: (r.json as any).dedup_key ?? 'dk-1' } };
    if (r.path.startsWith('/og/v2/alerts')) return { status: 202, body: { result: 'Request will be processed', took: 0.1, requestId: r.path.endsWith('/close?identifierType=alias') ? 'r-close' : 'r-create' } };
    if (r.path === '/jira/rest/api/3/issue') return { status: 201, body: { id: '10001', key: 'OPS-1', self: 'x' } };
    if (r.path === '/jira/rest/api/3/issue/OPS-1/transitions' && r.method === 'GET') return { body: { transitions: [{ id: '21', name: 'In Progress' }, { id: '31', name: 'Done' }] } };
    if (r.path === '/jira/rest/api/3/issue/OPS-1/transitions') return { status: 204 };
    return undefined;
  });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server);
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await target.stop();
});

const outputs = async (id: string) => Object.fromEntries((await db.query('select step_ref, output from step_runs where run_id = $1', [id])).rows.map((r) => [r.step_ref, r.output]));

describe('the catalogue', () => {
  test('GET /api/v1/plugins lists exactly the kinds the engine runs, each with JSON Schemas', async () => {
    const r = await server.call('GET', '/api/v1/plugins');
    expect(r.status).toBe(200);
    expect(r.body.map((p: any) => p.id)).toEqual(PLUGINS.map((p) => p.id).sort());
    const log = r.body.find((p: any) => p.id === 'util.log');
    expect(log).toMatchObject({ name: 'Log', category: 'core', aliases: ['log'], credentials: false, requires: [], available: true });
    expect(log.inputSchema).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', required: ['message'] });
    expect(log.inputSchema.properties.level).toMatchObject({ enum: ['debug', 'info', 'warn', 'error'], default: 'info' });
    expect(r.body.find((p: any) => p.id === 'http.request')).toMatchObject({ credentials: true });
  });

  test('categories count the plugins; a category filter lists only its own; an unknown one is refused', async () => {
    const cats = (await server.call('GET', '/api/v1/plugins/categories')).body;
    expect(cats.reduce((n: number, c: any) => n + c.count, 0)).toBe(PLUGINS.length);
    expect(cats.find((c: any) => c.id === 'flow')).toEqual({ id: 'flow', name: 'Flow control', count: PLUGINS.filter((p) => p.category === 'flow').length });
    const transforms = (await server.call('GET', '/api/v1/plugins?category=transform')).body;
    expect(transforms.length).toBeGreaterThan(0);
    expect(transforms.every((p: any) => p.category === 'transform')).toBe(true);
    const bad = await server.call('GET', '/api/v1/plugins?category=nope');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'bad_request', details: [expect.objectContaining({ field: 'category' })] });
  });

  test('one plugin by id or alias (answered canonically); unknown → 404; no token → 401', async () => {
    expect((await server.call('GET', '/api/v1/plugins/flow.approval')).body).toMatchObject({ id: 'flow.approval', aliases: ['approval', 'flow.gate'] });
    expect((await server.call('GET', '/api/v1/plugins/approval')).body.id).toBe('flow.approval');
    const missing = await server.call('GET', '/api/v1/plugins/util.lgo');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: 'No plugin util.lgo', code: 'not_found' });
    expect((await server.call('GET', '/api/v1/plugins', undefined, null)).status).toBe(401);
  });

  test('every plugin runs in one of the fixture flows below (nothing listed is untested)', () => {
    const used = new Set<string>();
    for (const f of fs.readdirSync(FLOWS)) for (const s of YAML.parse(fs.readFileSync(path.join(FLOWS, f), 'utf8')).steps) used.add(pluginFor(s.type)!.id);
    expect(PLUGINS.map((p) => p.id).filter((id) => !used.has(id))).toEqual([]);
  });
});

describe('running the plugins on engine v2', () => {
  test('the first kinds by their catalogue ids: log, sleep, HTTP, thread notice, child flow, event, gate', async () => {
    const owner = (await server.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: 'owner@acme.io' })).body.token;
    const id = await startRun(server, 'canonical', { target: target.url });
    await eventually(async () => ((await db.query(`select status from step_runs where run_id = $1 and step_ref = 'wait'`, [id])).rows[0]?.status === 'waiting' ? true : undefined), 20_000, 'waiting for the event');
    expect((await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go', payload: { n: 7 } })).status).toBe(202);
    const { rows: [a] } = await eventually(async () => { const q = await db.query(`select id from approvals where run_id = $1`, [id]); return q.rows.length ? q : undefined; }, 20_000, 'approval opened');
    expect((await server.call('POST', `/sfp/api/flows/approvals/${a.id}/approve`, { approver: 'owner', approverEmail: 'owner@acme.io' }, owner)).status).toBe(200);
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const out = await outputs(id);
    expect(target.to('/canonical')).toHaveLength(1);
    expect(out.nap.sleptMs).toBeGreaterThanOrEqual(1000);
    expect(out.tell).toMatchObject({ message: 'called 200' });
    expect(out.child).toMatchObject({ decoded: 'from parent' });
    expect(out.wait).toEqual({ n: 7 });
    expect(out.done).toMatchObject({ message: 'approved by owner@acme.io, event 7' });
    // Stored under the names runs in flight know.
    const { rows: kinds } = await db.query(`select step_ref, kind from step_runs where run_id = $1 and step_ref in ('say', 'gate', 'child')`, [id]);
    expect(Object.fromEntries(kinds.map((k) => [k.step_ref, k.kind]))).toEqual({ say: 'log', gate: 'approval', child: 'flow' });
  });

  test('transforms and utilities give the outputs they document', async () => {
    const id = await startRun(server, 'transforms');
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const out = await outputs(id);
    expect(out.b64).toEqual({ value: Buffer.from('héllo wörld').toString('base64') });
    expect(out.b64url).toEqual({ value: 'Pz8-Pg' });
    expect(out.unb64).toEqual({ value: 'héllo wörld' });
    expect(out.sha).toEqual({ hash: createHash('sha256').update('abc').digest('hex') });
    expect(out.md5).toEqual({ hash: '900150983cd24fb0d6963f7d28e17f72' });
    expect(out.hmac).toEqual({ hash: createHmac('sha256', HMAC_KEY).update('abc').digest('hex') });
    expect(out.parsed).toEqual({ value: { a: 1, b: [2, 3], c: 'x' } });
    expect(out.text).toEqual({ value: '{"a":1,"b":[2,3],"c":"x"}' });
    expect(out.merged).toEqual({ value: { a: 9, b: [2, 3], c: 'x', d: true } });
    expect(out.picked).toEqual({ value: { a: 1, c: 'x' } });
    expect(out.omitted).toEqual({ value: { b: [2, 3], c: 'x' } });
    expect(out.u4.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(out.u7.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(out.dice.value).toBeGreaterThanOrEqual(1);
    expect(out.dice.value).toBeLessThan(7);
    expect(out.code.value).toMatch(/^[ABC]{12}$/);
    // The credential went into the HMAC only: no output or log line holds it.
    const { rows: lines } = await db.query('select message from log_lines where run_id = $1', [id]);
    expect(JSON.stringify([out, lines])).not.toContain(HMAC_KEY);
  });

  test('data transforms: JSONPath, YAML, CSV, template, dates, map, filter, sort, group', async () => {
    const id = await startRun(server, 'data');
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const out = await outputs(id);
    expect(out.older).toEqual({ matches: ['ann', 'cy'], first: 'ann' });
    expect(out.none).toEqual({ matches: [], first: null });
    expect(out.toYaml).toEqual({ value: 'a: 1\nb:\n  - x\n  - y\n' });
    expect(out.fromYaml).toEqual({ value: { a: 1, b: ['x', 'y'] } });
    expect(out.csvOut).toEqual({ value: 'name,age,team\r\nann,41,ops\r\nbob,29,dev\r\ncy,35,ops' });
    expect(out.csvIn).toEqual({ value: [{ name: 'ann', note: 'said "hi"; twice' }, { name: 'bob', note: 'two\nlines' }] });
    expect(out.csvRows).toEqual({ value: [['1', '2'], ['3', '4']] });
    expect(out.letter).toEqual({ text: 'Dear ann,\nyou are 41.' });
    expect(out.parsed).toEqual({ iso: '2026-11-30T09:00:00.000Z', epochMs: Date.parse('2026-11-30T09:00:00Z') });
    expect(out.later.iso).toBe('2026-11-30T07:30:00.000Z');
    expect(out.gap.diffMs).toBe(86_400_000);
    expect(out.shown.text).toBe('29 Nov 2026');
    expect(Math.abs(out.now.epochMs - Date.now())).toBeLessThan(60_000);
    expect(out.names).toEqual({ items: ['ann#0', 'bob#1', 'cy#2'] });
    expect(out.ops.items.map((p: any) => p.name)).toEqual(['ann', 'cy']);
    expect(out.byAge.items.map((p: any) => p.name)).toEqual(['ann', 'cy', 'bob']);
    expect(out.words).toEqual({ items: ['apple', 'fig', 'pear'] });
    expect(Object.fromEntries(Object.entries(out.teams.groups).map(([k, v]: [string, any]) => [k, v.map((p: any) => p.name)]))).toEqual({ ops: ['ann', 'cy'], dev: ['bob'] });
    const bad = await waitForRun(server, await startRun(server, 'bad-sort'));
    expect(bad.status).toBe('Failed');
    expect(bad.error).toMatch(/with\.by: the sort keys must all be numbers or all text/);
  });

  test('kv plugins: get with a default, set (new, then updated with a TTL), increment, list by prefix, delete; each in its own namespace', async () => {
    await db.query(`insert into kv_entries (repository_identifier, key, value) values ('acme/app', 'k1/word', '"hello"')`);
    const id = await startRun(server, 'kv', { prefix: 'k1' });
    const run = await waitForRun(server, id);
    expect(run.engineStatus).toBe('partial');
    const out = await outputs(id);
    expect(out.missing).toEqual({ value: 7, found: false });
    expect(out.put).toEqual({ created: true });
    expect(out.again).toEqual({ created: false });
    expect(out.read).toEqual({ value: { env: 'prod', replicas: 4 }, found: true });
    expect([out.count1, out.count2]).toEqual([{ value: 1 }, { value: 3.5 }]);
    expect(out.keys).toEqual({ keys: ['k1/config', 'k1/count', 'k1/word'] });
    expect([out.gone, out.goneAgain]).toEqual([{ deleted: true }, { deleted: false }]);
    const { rows: [failed] } = await db.query(`select status, error from step_runs where run_id = $1 and step_ref = 'notNumber'`, [id]);
    expect(failed).toEqual({ status: 'failed', error: 'k1/word holds "hello", not a number' });
    const { rows } = await db.query(`select key, value, expires_at from kv_entries where repository_identifier = 'acme/app' and key like 'k1/%' order by key`);
    expect(rows.map((r) => [r.key, r.value])).toEqual([['k1/count', 3.5], ['k1/word', 'hello']]);
    // Another namespace sees none of it; an expired key is absent and is set again as new.
    await createProject(server, 'acme/other');
    expect(await server.services.kv.get('acme/other', 'k1/count')).toBeNull();
    await db.query(`update kv_entries set expires_at = now() - interval '1 second' where key = 'k1/count'`);
    expect(await server.services.kv.get('acme/app', 'k1/count')).toBeNull();
    expect((await server.services.kv.set('acme/app', 'k1/count', 1)).created).toBe(true);
    await db.query(`update kv_entries set expires_at = now() - interval '1 second' where key = 'k1/word'`);
    expect(await server.services.kv.prune()).toBe(1);
    // Limits: 64 KiB per value, 10,000 live keys per namespace (a key already there may still change).
    await expect(server.services.kv.set('acme/other', 'big', 'x'.repeat(70_000))).rejects.toThrow(/at most 65536/);
    await db.query(`insert into kv_entries (repository_identifier, key, value) select 'acme/other', 'n' || g, '1' from generate_series(1, 9999) g`);
    expect((await server.services.kv.set('acme/other', 'last', 1)).created).toBe(true);
    await expect(server.services.kv.set('acme/other', 'one-more', 1)).rejects.toThrow(/holds 10000 keys already/);
    expect((await server.services.kv.set('acme/other', 'last', 2)).created).toBe(false);
  });

  test('protocols: GraphQL with a credential, a signed webhook, a durable poll until a condition holds', async () => {
    const id = await startRun(server, 'protocols', { target: target.url });
    const run = await waitForRun(server, id, undefined, 30_000);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const out = await outputs(id);
    const gql = target.to('/graphql')[0];
    expect(gql.headers.authorization).toBe(`Bearer ${GQL_TOKEN}`);
    expect(gql.json).toEqual({ query: 'query Deploys($env: String!) { deploys(env: $env) { id } }', variables: { env: 'prod' } });
    expect(out.query).toEqual({ data: { deploys: [{ id: 'd1' }] } });
    const hook = target.to('/hook')[0];
    expect(hook.json).toMatchObject({ event: 'deploy.started', runId: id, payload: { deploys: [{ id: 'd1' }] } });
    expect(hook.headers['x-flowgate-event']).toBe('deploy.started');
    expect(verifySignature(hook.headers['x-flowgate-signature-256'] as string, hook.body, HOOK_SECRET, 'webhook.send')).toBe(true);
    expect(out.hook).toEqual({ status_code: 200 });
    // Polled three times, the run released between polls (parked `waiting` with a wake-up time).
    expect(target.to('/status')).toHaveLength(3);
    expect(out.ready).toMatchObject({ status: 200, body: { state: 'ready' }, polls: 3 });
    const { rows: lines } = await db.query('select message from log_lines where run_id = $1', [id]);
    expect(JSON.stringify([out, lines])).not.toContain(GQL_TOKEN);
    expect(JSON.stringify([out, lines])).not.toContain(HOOK_SECRET);
    const bad = await waitForRun(server, await startRun(server, 'graphql-errors', { target: target.url }));
    expect(bad.error).toMatch(/GraphQL errors: Cannot query field "nope"/);
  });

  test('branching: flow.if skips the dependents of a false condition (and theirs), flow.switch runs one case, flow.foreach a child per item', async () => {
    const statuses = async (id: string) => Object.fromEntries((await db.query('select step_ref, status from step_runs where run_id = $1', [id])).rows.map((r) => [r.step_ref, r.status]));
    const prod = await startRun(server, 'branching', { env: 'prod' });
    const run = await waitForRun(server, prod);
    expect({ status: run.status, engineStatus: run.engineStatus }).toEqual({ status: 'Completed', engineStatus: 'completed' });
    expect(await statuses(prod)).toMatchObject({
      isProd: 'completed', prodOnly: 'completed', afterProd: 'completed', notProd: 'completed', otherOnly: 'skipped',
      route: 'completed', toProd: 'completed', toStaging: 'skipped', toElsewhere: 'skipped', fan: 'completed',
    });
    const out = await outputs(prod);
    expect(out.isProd).toEqual({ result: true });
    expect(out.route).toEqual({ case: 'prod', skipped: ['toStaging', 'toElsewhere'] });
    expect(out.fan.results.map((r: any) => [r.item, r.status, r.result])).toEqual([[1, 'completed', { doubled: 2 }], [2, 'completed', { doubled: 4 }], [3, 'completed', { doubled: 6 }]]);
    const dev = await startRun(server, 'branching', { env: 'dev' });
    expect((await waitForRun(server, dev)).engineStatus).toBe('completed');
    expect(await statuses(dev)).toMatchObject({ isProd: 'completed', prodOnly: 'skipped', afterProd: 'skipped', otherOnly: 'completed', toProd: 'skipped', toStaging: 'skipped', toElsewhere: 'completed' });
    const { rows: [why] } = await db.query(`select error from step_runs where run_id = $1 and step_ref = 'prodOnly'`, [dev]);
    expect(why.error).toBe('skipped: not the branch isProd took');
  });

  test('incidents and chat: PagerDuty trigger and resolve, Opsgenie create and close, a Teams message, a Jira issue moved by transition name', async () => {
    const id = await startRun(server, 'incidents', { target: target.url });
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const out = await outputs(id);
    const [page, resolve] = target.to('/pd/v2/enqueue').map((r) => r.json as any);
    expect(page).toEqual({ routing_key: PD_KEY, event_action: 'trigger', payload: { summary: 'deploy failed', source: 'flowgate', severity: 'critical', custom_details: { run: id } } });
    expect(resolve).toEqual({ routing_key: PD_KEY, event_action: 'resolve', dedup_key: 'dk-1' });
    expect([out.page, out.resolve]).toEqual([{ dedupKey: 'dk-1' }, { dedupKey: 'dk-1' }]);
    const [create] = target.to('/og/v2/alerts');
    expect(create.headers.authorization).toBe(`GenieKey ${OG_KEY}`);
    expect(create.json).toEqual({ message: 'deploy failed', alias: 'deploy/1', priority: 'P2' });
    expect(target.to('/og/v2/alerts/deploy%2F1/close?identifierType=alias')).toHaveLength(1);
    expect([out.alert, out.close]).toEqual([{ requestId: 'r-create' }, { requestId: 'r-close' }]);
    expect(target.to('/teams/hook')[0].json).toEqual({ title: 'Deploy', text: 'deploy failed' });
    const issue = target.to('/jira/rest/api/3/issue')[0];
    expect(issue.headers.authorization).toBe(`Basic ${Buffer.from(`ops@acme.io:${JIRA_TOKEN}`).toString('base64')}`);
    expect((issue.json as any).fields).toMatchObject({ project: { key: 'OPS' }, issuetype: { name: 'Task' }, summary: 'Deploy failed', labels: ['deploy'],
      description: { type: 'doc', version: 1, content: [{ type: 'paragraph', content: [{ type: 'text', text: 'line one' }] }, { type: 'paragraph', content: [{ type: 'text', text: 'line two' }] }] } });
    expect(out.ticket).toEqual({ key: 'OPS-1', url: `${target.url}/jira/browse/OPS-1` });
    expect(target.to('/jira/rest/api/3/issue/OPS-1/transitions').filter((r) => r.method === 'POST')[0].json).toEqual({ transition: { id: '31' } });
    expect(out.done).toEqual({ transitionId: '31' });
    const { rows: lines } = await db.query('select message from log_lines where run_id = $1', [id]);
    for (const secret of [PD_KEY, OG_KEY, JIRA_TOKEN]) expect(JSON.stringify([out, lines])).not.toContain(secret);
  });

  test('flow.fail fails the run with its message when its condition holds, and is skipped when not', async () => {
    const failed = await waitForRun(server, await startRun(server, 'guarded', { env: 'production' }));
    expect(failed.status).toBe('Failed');
    expect(failed.error).toMatch(/step guard failed: not on production/);
    const passed = await waitForRun(server, await startRun(server, 'guarded', { env: 'staging' }));
    expect(passed.status).toBe('Completed');
  });

  test('bad input to a plugin fails its step for good, naming the field', async () => {
    const run = await waitForRun(server, await startRun(server, 'bad-json'));
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/with\.value: not JSON/);
  });
});
