import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freshDatabaseUrl } from '../support/database.js';
import { killAllServerProcesses, spawnServerProcess, startServerProcess } from '../support/process.js';
import { ADMIN_TOKEN, eventually } from '../support/server.js';

// Start-up of the real server process: configuration and manifest errors, the admin token
// bootstrap, and the platform endpoints. (In ESM mode the `jest` object is not a global:
// timeouts go as the third argument.)
const TIMEOUT = 120_000;

/** Nothing listens here: a process that got past its checks would fail on the database instead. */
const UNREACHABLE_DB = 'postgres://nobody:nothing@127.0.0.1:9/none';
const tempDirs: string[] = [];

afterEach(async () => {
  await killAllServerProcesses();
}, TIMEOUT);
afterAll(async () => {
  await killAllServerProcesses();
  for (const d of tempDirs) await fs.rm(d, { recursive: true, force: true });
}, TIMEOUT);

test('an invalid configuration exits 1 and names every bad variable', async () => {
  const proc = await spawnServerProcess({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: UNREACHABLE_DB });
  const exit = await proc.exited;
  expect(exit).toEqual({ code: 1, signal: null });
  expect(proc.stderr()).toMatch(/^Invalid configuration:/);
  expect(proc.stderr()).toMatch(/^ {2}- PORT: /m);
  expect(proc.stderr()).toMatch(/^ {2}- LOG_LEVEL: /m);
  expect(proc.stdout()).toBe('');
}, TIMEOUT);

test('an invalid flow manifest exits 1 naming the file and the field path', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flowgate-e2e-manifests-'));
  tempDirs.push(dir);
  await fs.writeFile(path.join(dir, 'good.yaml'), [
    'id: good',
    'name: Good',
    'steps:',
    '  - { ref: hello, type: log, with: { message: hi } }',
    '',
  ].join('\n'));
  await fs.writeFile(path.join(dir, 'broken.yaml'), [
    'id: broken',
    'name: Broken',
    'category: testing',
    'steps:',
    '  - ref: a',
    '    type: log',
    '    with: { message: first }',
    '  - ref: b',
    '    type: log',
    '    dependsOn: [a, missing]',
    '    with: { message: second }',
    '',
  ].join('\n'));
  const proc = await spawnServerProcess({ FLOWGATE_MANIFESTS_DIR: dir, DATABASE_URL: UNREACHABLE_DB });
  const exit = await proc.exited;
  expect(exit).toEqual({ code: 1, signal: null });
  expect(proc.stderr()).toMatch(/^Invalid flow manifests:/);
  expect(proc.stderr()).toContain('broken.yaml: steps[1].dependsOn[1]: unknown step "missing"');
  expect(proc.stderr()).not.toContain('good.yaml');
}, TIMEOUT);

test('without FLOWGATE_ADMIN_TOKEN the first start prints a working admin token once; a restart prints none', async () => {
  const env = { DATABASE_URL: await freshDatabaseUrl('e2e_bootstrap'), FLOWGATE_ADMIN_TOKEN: undefined };
  const first = await startServerProcess(env);
  const printed = await eventually(async () => /Flowgate admin token \(shown once, store it now\): (\S+)/.exec(first.stdout())?.[1], 10_000, 'the admin token on stdout');

  const tokens = await first.call('GET', '/api/v1/tokens', undefined, printed);
  expect(tokens.status).toBe(200);
  expect(tokens.body.tokens).toEqual([expect.objectContaining({ name: 'admin', role: 'owner' })]);
  // The token is only shown, never returned by the API.
  expect(JSON.stringify(tokens.body)).not.toContain(printed);
  // No FLOWGATE_ADMIN_TOKEN: the fixed test token means nothing on this server.
  expect((await first.call('GET', '/api/v1/tokens', undefined, ADMIN_TOKEN)).status).toBe(401);

  expect(await first.stop()).toEqual({ code: 0, signal: null });
  expect(first.output().split('Flowgate admin token').length - 1).toBe(1);
  // Only on stdout (the console), nowhere in the logs.
  expect(first.stderr()).not.toContain(printed);

  const second = await startServerProcess(env);
  const again = await second.call('GET', '/api/v1/tokens', undefined, printed);
  expect(again.status).toBe(200);
  expect(again.body.tokens).toHaveLength(1);
  expect(await second.stop()).toEqual({ code: 0, signal: null });
  expect(second.output()).not.toContain('Flowgate admin token');
}, TIMEOUT);

test('health, readiness, metrics and the OpenAPI document answer without a token', async () => {
  const server = await startServerProcess({ DATABASE_URL: await freshDatabaseUrl('e2e_platform') });

  const health = await server.call('GET', '/healthz', undefined, null);
  expect(health.status).toBe(200);
  expect(health.body).toEqual({ status: 'ok' });

  const ready = await server.call('GET', '/readyz', undefined, null);
  expect(ready.status).toBe(200);
  expect(ready.body).toEqual({ status: 'ready', checks: { database: 'ok', engine: 'ok' } });

  // One run started, so the counter has a sample.
  expect((await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'] })).status).toBe(201);
  const run = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'notifier', repositoryIdentifier: 'acme/app' } });
  expect(run.status).toBe(201);

  const metrics = await server.call('GET', '/metrics', undefined, null);
  expect(metrics.status).toBe(200);
  expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
  const text: string = metrics.body;
  expect(text).toContain('# TYPE flowgate_http_request_duration_seconds histogram');
  expect(text).toMatch(/^flowgate_http_request_duration_seconds_count\{[^}]*route="\/readyz"[^}]*\} \d+/m);
  expect(text).toContain('# TYPE flowgate_runs_started_total counter');
  expect(text).toMatch(/^flowgate_runs_started_total\{task_type="notifier"\} 1$/m);

  const openapi = await server.call('GET', '/openapi.json', undefined, null);
  expect(openapi.status).toBe(200);
  expect(openapi.body.openapi).toBe('3.1.0');
  expect(openapi.body.paths['/sfp/api/flows/run']).toHaveProperty('post');
  expect(openapi.body.paths['/api/v1/tokens']).toHaveProperty('get');
  expect(openapi.body.paths['/api/v1/tokens']).toHaveProperty('post');

  expect(await server.stop()).toEqual({ code: 0, signal: null });
}, TIMEOUT);
