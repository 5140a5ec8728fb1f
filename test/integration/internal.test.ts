import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

let server: TestServer;
let app: string;
const FLOWS = '/sfp/api/flows';

beforeAll(async () => {
  server = await startTestServer({ env: { FLOWGATE_SWEEP_INTERVAL_MS: '300' } });
  await createProject(server, 'acme/app');
  await createProject(server, 'acme/other');
  app = await createToken(server, { name: 'engine', role: 'application' });
});
afterAll(async () => { await server?.stop(); });

const as = (method: string, path: string, body?: unknown, token: string | null = app) => server.call(method, `${FLOWS}${path}`, body, token);
async function parent() {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'acme/app' } });
  return r.body.id as string;
}

test('register-child records a child under its parent, inheriting triggeredBy, rerunnable with its rerun payload', async () => {
  const parentId = await parent();
  const r = await as('POST', '/internal/register-child', {
    parentTaskExecutionId: parentId, hatchetRunId: 'h-child-1', taskType: 'child-call', flowPath: 'child-call', repositoryIdentifier: 'acme/app',
    payload: { name: 'core', applicationToken: 'x' }, rerunPayload: { target: 'http://127.0.0.1:9', name: 'core' },
  });
  expect(r.status).toBe(201);
  const child = (await server.call('GET', `${FLOWS}/${r.body.executionId}`)).body;
  expect(child).toMatchObject({ parentExecutionId: parentId, triggeredBy: 'app:admin', engineRunId: 'h-child-1', engine: 'external', status: 'Running', taskType: 'child-call' });
  expect((await server.call('GET', `${FLOWS}/h-child-1`)).body.id).toBe(r.body.executionId);
  expect((await server.call('GET', `${FLOWS}/${parentId}/children`)).body.count).toBe(1);

  // Cancel the parent: the recorded child is cancelled too (there is no workflow of ours to stop).
  expect((await server.call('POST', `${FLOWS}/${parentId}/cancel`)).body.cancelledExecutionIds).toHaveLength(2);
  const rerun = await server.call('POST', `${FLOWS}/${r.body.executionId}/rerun`, {});
  expect(rerun.status).toBe(201);
  expect(rerun.body.parentExecutionId).toBe(parentId);
  const again = await waitForRun(server, rerun.body.id);
  expect(again.payload).toEqual({ id: 'child-call', target: 'http://127.0.0.1:9', name: 'core' });

  const missing = await as('POST', '/internal/register-child', { parentTaskExecutionId: '01a20000-0000-7000-8000-000000000000', taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/app' });
  expect(missing.status).toBe(400);
  expect(missing.body.message).toEqual(['parentTaskExecutionId: no such execution']);
  const dup = await as('POST', '/internal/register-child', { parentTaskExecutionId: parentId, hatchetRunId: 'h-child-1', taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/app' });
  expect(dup.status).toBe(400);
  const bad = await as('POST', '/internal/register-child', { parentTaskExecutionId: parentId });
  expect(bad.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/^taskType: /), expect.stringMatching(/^flowPath: /), expect.stringMatching(/^repositoryIdentifier: /)]));
});

test('register-scheduled records a cron run, left out of listings unless asked for', async () => {
  const r = await as('POST', '/internal/register-scheduled', {
    hatchetRunId: 'h-sched-1', taskType: 'monitor-pool', flowPath: 'monitor-pool', repositoryIdentifier: 'acme/app', schedulePath: 'pool-monitor-acme', category: 'pool', payload: { poolTag: 'dev' },
  });
  expect(r.status).toBe(201);
  const listed = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&includeScheduled=true&category=pool`)).body.runs;
  expect(listed[0]).toMatchObject({ id: r.body.executionId, triggeredBy: 'cron', schedulePath: 'pool-monitor-acme', category: 'pool' });
  expect((await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&category=pool`)).body.count).toBe(0);
  expect((await as('POST', '/internal/register-scheduled', { hatchetRunId: 'h2', taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/app' })).body.message).toEqual([expect.stringMatching(/^schedulePath: /)]);
  expect((await as('POST', '/internal/register-scheduled', { hatchetRunId: 'h3', taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/none', schedulePath: 's' })).status).toBe(400);
});

test('metadata deep-merges into the result without replacing it', async () => {
  const id = await parent();
  expect((await as('PATCH', `/internal/${id}/metadata`, { result: { build: { packages: ['a'], status: 'ok' }, url: 'x' } })).status).toBe(200);
  const merged = await as('PATCH', `/internal/${id}/metadata`, { result: { build: { status: 'done', deployed: true } } });
  expect(merged.body.result).toEqual({ build: { packages: ['a'], status: 'done', deployed: true }, url: 'x' });
  expect((await server.call('GET', `${FLOWS}/${id}`)).body.result).toEqual(merged.body.result);
  expect((await as('PATCH', '/internal/01a20000-0000-7000-8000-000000000000/metadata', { result: {} })).status).toBe(404);
  expect((await as('PATCH', `/internal/${id}/metadata`, { result: 'x' })).status).toBe(400);
  await server.call('POST', `${FLOWS}/${id}/cancel`);
});

test('track-lock-run shows the lock on the run; the cleanup releases it once the run has ended', async () => {
  const id = await parent();
  const r = await as('POST', '/internal/track-lock-run', { lockKey: 'deploy:acme/app:prod', runId: id });
  expect(r.status).toBe(201);
  expect(r.body).toMatchObject({ lockKey: 'deploy:acme/app:prod', runId: id });
  expect((await server.call('GET', `${FLOWS}/${id}`)).body.locks).toEqual([{ lockKey: 'deploy:acme/app:prod', acquiredAt: r.body.acquiredAt }]);
  await new Promise((res) => setTimeout(res, 800));
  expect((await server.call('GET', `${FLOWS}/${id}`)).body.locks).toHaveLength(1);
  await server.call('POST', `${FLOWS}/${id}/cancel`);
  await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.locks.length === 0 ? true : undefined), 10_000, 'lock released');
  const audit = await server.services.audit.list({ targetType: 'run', targetId: id });
  expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['lock.tracked', 'lock.released']));
  expect((await as('POST', '/internal/track-lock-run', { lockKey: 'k', runId: 'nope' })).status).toBe(404);
  expect((await as('POST', '/internal/track-lock-run', { runId: id })).body.message).toEqual([expect.stringMatching(/^lockKey: /)]);
});

test('internal endpoints are for application tokens only, within their projects', async () => {
  const owner = await createToken(server, { name: 'owner2', role: 'owner' });
  const scoped = await createToken(server, { name: 'other-engine', role: 'application', projects: ['acme/other'] });
  const id = await parent();
  expect((await as('PATCH', `/internal/${id}/metadata`, { result: {} }, owner)).body).toMatchObject({ statusCode: 403, message: 'Forbidden - Requires role: application' });
  expect((await as('PATCH', `/internal/${id}/metadata`, { result: {} }, scoped)).status).toBe(403);
  expect((await as('POST', '/internal/track-lock-run', { lockKey: 'k', runId: id }, null)).status).toBe(401);
  await server.call('POST', `${FLOWS}/${id}/cancel`);
});
