import { idFrom } from '../../src/core/ids.js';
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
  expect(dup.status).toBe(409);
  expect(dup.body).toMatchObject({ statusCode: 409, error: 'Conflict', message: ['hatchetRunId: already the id or engine run id of a run'] });
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

test('metadata of a finished run is final: 409 with its status, audited, the result unchanged', async () => {
  const id = await parent();
  expect((await as('PATCH', `/internal/${id}/metadata`, { result: { stage: 'build' } })).status).toBe(200);
  await server.call('POST', `${FLOWS}/${id}/cancel`);
  const refused = await as('PATCH', `/internal/${id}/metadata`, { result: { stage: 'rewritten' } });
  expect(refused.status).toBe(409);
  expect(refused.body).toMatchObject({ statusCode: 409, error: 'Conflict', currentStatus: 'cancelled', message: expect.stringMatching(/already ended cancelled/) });
  expect((await server.call('GET', `${FLOWS}/${id}`)).body.result).toEqual({ stage: 'build' });
  const audit = await server.services.audit.list({ targetType: 'run', targetId: id });
  expect(audit.find((a) => a.action === 'run.metadata_refused')?.details).toMatchObject({ keys: ['stage'], currentStatus: 'cancelled' });
});

test('an external engine run id cannot squat another project\'s run id or Flowgate\'s own id forms (409); the victim\'s run stays reachable', async () => {
  const victim = await parent();
  const otherParent = (await server.call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'acme/other' } })).body.id as string;
  const squatter = await createToken(server, { name: 'squatter', role: 'application', projects: ['acme/other'] });
  const child = (hatchetRunId: string) => as('POST', '/internal/register-child', { parentTaskExecutionId: otherParent, hatchetRunId, taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/other' }, squatter);
  const scheduled = (hatchetRunId: string) => as('POST', '/internal/register-scheduled', { hatchetRunId, taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/other', schedulePath: 's' }, squatter);

  for (const [register, hatchetRunId, why] of [
    [child, victim, 'already the id or engine run id of a run'],
    [scheduled, victim, 'already the id or engine run id of a run'],
    [child, `run-${victim}`, 'this form is reserved for Flowgate\'s own runs'],
    // A door's run id derives from its delivery: its engine run id can be known before the run exists.
    [scheduled, `run-${idFrom('a future delivery')}`, 'this form is reserved for Flowgate\'s own runs'],
    [child, `ext-${idFrom('another')}`, 'this form is reserved for Flowgate\'s own runs'],
  ] as const) {
    const r = await register(hatchetRunId);
    expect({ hatchetRunId, status: r.status, body: r.body }).toEqual({ hatchetRunId, status: 409, body: expect.objectContaining({ statusCode: 409, error: 'Conflict', message: [`hatchetRunId: ${why}`] }) });
  }
  const refused = await server.services.orm.em.fork().getConnection().execute(`select count(*)::int as n from runs where repository_identifier = 'acme/other' and engine = 'external'`);
  expect(refused[0].n).toBe(0);

  // The victim's run answers as before: detail, metadata, cancel.
  expect((await server.call('GET', `${FLOWS}/${victim}`)).body).toMatchObject({ id: victim, repositoryIdentifier: 'acme/app', engineStatus: expect.stringMatching(/^(queued|running|waiting)$/) });
  expect((await as('PATCH', `/internal/${victim}/metadata`, { result: { ok: true } })).status).toBe(200);
  expect((await server.call('POST', `${FLOWS}/${victim}/cancel`)).body.cancelledExecutionIds).toEqual([victim]);
  await server.call('POST', `${FLOWS}/${otherParent}/cancel`);
});

test('an id that is both a run\'s id and an external engine run id finds the run, whatever was recorded first', async () => {
  const future = idFrom('a door run not started yet');
  const other = await createToken(server, { name: 'other-engine-2', role: 'application', projects: ['acme/other'] });
  const external = await as('POST', '/internal/register-scheduled', { hatchetRunId: future, taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/other', schedulePath: 's' }, other);
  expect(external.status).toBe(201);
  const run = await server.services.runs.start({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'test', id: future }, { name: 'test', door: 'rest' });
  expect(run.id).toBe(future);
  expect((await server.call('GET', `${FLOWS}/${future}`)).body).toMatchObject({ id: future, repositoryIdentifier: 'acme/app' });
  expect((await as('PATCH', `/internal/${future}/metadata`, { result: { mine: true } })).body).toMatchObject({ id: future, result: { mine: true } });
  // The squatter's own run is still its own, by its run id.
  expect((await as('GET', `/${external.body.executionId}`, undefined, other)).body).toMatchObject({ id: external.body.executionId, engineRunId: future });
  await server.call('POST', `${FLOWS}/${future}/cancel`);
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
