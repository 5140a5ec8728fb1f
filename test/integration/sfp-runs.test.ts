import { Run } from '../../src/db/entities/run.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

let server: TestServer;
const target = new Recorder();
const FLOWS = '/sfp/api/flows';

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path === '/fail' ? { status: 500 } : undefined));
  target.respond((r) => (r.path.startsWith('/child/slow') ? { delayMs: 4000 } : undefined));
  server = await startTestServer();
  await createProject(server, 'acme/app');
  await createProject(server, 'acme/other');
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

const body = (id: string, params: Record<string, unknown> = {}, repo = 'acme/app') => ({ payload: { id, repositoryIdentifier: repo, target: target.url, ...params } });
const start = async (id: string, params: Record<string, unknown> = {}, repo = 'acme/app') => {
  const r = await server.call('POST', `${FLOWS}/run`, body(id, params, repo));
  expect(r.status).toBe(201);
  return r.body.id as string;
};

/** Inserts a finished run directly (cicd, scheduled or work-item runs cannot be started through this API). */
async function seedRun(overrides: Partial<Run>): Promise<Run> {
  const run = await server.services.runs.prepare({ payload: { id: 'child-call', target: 'http://127.0.0.1:9', name: 'x' }, repositoryIdentifier: 'acme/app', triggeredBy: 'seed' });
  Object.assign(run, { status: 'completed', startedAt: new Date(), finishedAt: new Date() }, overrides);
  await server.services.store.insert(run);
  return run;
}

describe('POST /run', () => {
  test('starts a run and answers TaskRunResponseDto', async () => {
    const r = await server.call('POST', `${FLOWS}/run`, { ...body('parallel'), callback: { type: 'none' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ taskType: 'parallel', status: 'Running' });
    expect(Date.parse(r.body.triggeredAt)).not.toBeNaN();
    const run = await waitForRun(server, r.body.id);
    expect(run).toMatchObject({ status: 'Completed', triggeredBy: 'app:admin', repositoryIdentifier: 'acme/app', callback: { type: 'none' } });
  });

  test('400s name what was wrong', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ payload: { id: 'parallel', repositoryIdentifier: 'acme/nope', target: target.url } }, 'payload.repositoryIdentifier', /not registered/],
      [{ payload: { id: 'no-such-flow', repositoryIdentifier: 'acme/app' } }, 'payload.id', /unknown flow type "no-such-flow" \(known: .*parallel/],
      [{ payload: { repositoryIdentifier: 'acme/app' } }, 'payload.id', /required/],
      [{ payload: { id: 'two-calls', repositoryIdentifier: 'acme/app', sleepSeconds: 'soon' } }, 'payload.target', /required parameter/],
      [{ payload: 'x' }, 'payload', /object/],
      [{ payload: { id: 'parallel', repositoryIdentifier: 'acme/app', target: 'x' }, callback: { type: 'webhook' } }, 'callback.webhook', /required when type is webhook/],
      [{ payload: { id: 'cicd-build', repositoryIdentifier: 'acme/app', commitSha: 'abc' } }, 'payload.id', /cicd/],
    ];
    for (const [b, field, msg] of cases) {
      const r = await server.call('POST', `${FLOWS}/run`, b);
      expect(r.status).toBe(400);
      expect(r.body.statusCode).toBe(400);
      expect(r.body.error).toBe('Bad Request');
      const line = (r.body.message as string[]).find((m) => m.startsWith(`${field}: `));
      expect(line).toMatch(msg);
    }
    const both = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'two-calls', repositoryIdentifier: 'acme/app', sleepSeconds: 'soon' } });
    expect(both.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/^payload.target: /), 'payload.sleepSeconds: must be a number, got string']));
  });

  test('401 without a valid token, 403 for a token scoped to another project', async () => {
    expect((await server.call('POST', `${FLOWS}/run`, body('parallel'), null)).body).toEqual({ statusCode: 401, message: 'Missing bearer token', error: 'Unauthorized' });
    const scoped = await createToken(server, { name: 'other-only', role: 'member', email: 'x@acme.io', projects: ['acme/other'] });
    const r = await server.call('POST', `${FLOWS}/run`, body('parallel'), scoped);
    expect(r.status).toBe(403);
    expect(r.body.message).toMatch(/acme\/app/);
    expect((await server.call('POST', `${FLOWS}/run`, body('parallel', {}, 'acme/other'), scoped)).status).toBe(201);
  });

  test('a disabled type is refused and an override routes to the other type, recording both', async () => {
    await server.call('POST', `${FLOWS}/types/parallel/disable`, { repositoryIdentifier: 'acme/other' });
    const disabled = await server.call('POST', `${FLOWS}/run`, body('parallel', {}, 'acme/other'));
    expect(disabled.status).toBe(400);
    expect(disabled.body.summary ?? disabled.body.message).toMatch(/disabled/);
    await server.call('POST', `${FLOWS}/types/parallel/enable`, { repositoryIdentifier: 'acme/other' });

    await server.call('POST', `${FLOWS}/types/failing/override`, { repositoryIdentifier: 'acme/other', overrideFlowTypeId: 'conditional' });
    const r = await server.call('POST', `${FLOWS}/run`, body('failing', {}, 'acme/other'));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ taskType: 'conditional', requestedTaskType: 'failing' });
    const run = await waitForRun(server, r.body.id);
    expect(run).toMatchObject({ taskType: 'conditional', requestedTaskType: 'failing', status: 'Completed' });
    await server.call('DELETE', `${FLOWS}/types/failing/override`, { repositoryIdentifier: 'acme/other' });
  });
});

describe('GET /runs', () => {
  test('filters, pagination and validation', async () => {
    const seeded = await Promise.all([
      seedRun({ category: 'pool', triggeredBy: 'cron', schedulePath: 'pool-monitor' }),
      seedRun({ triggeredBy: 'alice@acme.io', workItemRef: { type: 'github-pr', key: '42' } }),
      seedRun({ executionMode: 'cicd', taskType: 'cicd-build', flowPath: 'ci/pipelines/build', category: 'build', createdAt: new Date(Date.now() - 3 * 86_400_000) }),
    ]);
    const q = (s: string) => server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app${s}`);
    const all = await q('&limit=100');
    expect(all.body.runs.map((r: any) => r.id)).not.toContain(seeded[0].id);
    expect((await q('&includeScheduled=true&limit=100')).body.runs.map((r: any) => r.id)).toContain(seeded[0].id);
    expect((await q('&workItemKey=42')).body.runs.map((r: any) => r.id)).toEqual([seeded[1].id]);
    expect((await q('&workItemType=github-pr&triggeredBy=alice@acme.io')).body.totalCount).toBe(1);
    expect((await q('&executionMode=cicd')).body.runs[0]).toMatchObject({ id: seeded[2].id, executionMode: 'cicd', category: 'build' });
    expect((await q('&flowPath=PIPELINES/b')).body.runs.map((r: any) => r.id)).toEqual([seeded[2].id]);
    expect((await q('&since=2d&executionMode=cicd')).body.count).toBe(0);
    expect((await q('&since=2020-01-01T00:00:00Z&executionMode=cicd')).body.count).toBe(1);
    const day = seeded[2].createdAt.toISOString().slice(0, 10);
    expect((await q(`&date=${day}`)).body.runs.map((r: any) => r.id)).toEqual([seeded[2].id]);
    expect((await q('&category=pool&includeScheduled=true')).body.runs.map((r: any) => r.id)).toEqual([seeded[0].id]);

    const total = all.body.totalCount;
    const page1 = await q('&limit=2&page=1');
    const page2 = await q('&limit=2&page=2');
    expect(page1.body).toMatchObject({ count: 2, totalCount: total, page: 1 });
    expect(page2.body.page).toBe(2);
    expect(page1.body.runs.map((r: any) => r.id)).not.toEqual(expect.arrayContaining(page2.body.runs.map((r: any) => r.id)));
    const created = page1.body.runs.map((r: any) => Date.parse(r.createdAt));
    expect(created[0]).toBeGreaterThanOrEqual(created[1]);

    for (const [s, field] of [['&limit=0', 'limit'], ['&limit=101', 'limit'], ['&page=0', 'page'], ['&since=yesterday', 'since'], ['&date=2024-13-45', 'date'], ['&executionMode=batch', 'executionMode']]) {
      const r = await q(s);
      expect(r.status).toBe(400);
      expect(r.body.message[0]).toMatch(new RegExp(`^${field}: `));
    }
    const missing = await server.call('GET', `${FLOWS}/runs`);
    expect(missing.status).toBe(400);
    expect(missing.body.message[0]).toMatch(/^repositoryIdentifier: /);
  });

  test('403 for a project outside the token', async () => {
    const scoped = await createToken(server, { name: 'other-reader', role: 'member', projects: ['acme/other'] });
    expect((await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app`, undefined, scoped)).status).toBe(403);
  });
});

describe('runs by id', () => {
  test('GET by run id or engine run id; 404 unknown; 403 other project', async () => {
    const id = await start('parallel');
    const byId = await server.call('GET', `${FLOWS}/${id}`);
    expect(byId.status).toBe(200);
    const byEngine = await server.call('GET', `${FLOWS}/${byId.body.engineRunId}`);
    expect(byEngine.body.id).toBe(id);
    const unknown = await server.call('GET', `${FLOWS}/01a20000-0000-7000-8000-000000000000`);
    expect(unknown).toMatchObject({ status: 404, body: { statusCode: 404, error: 'Not Found' } });
    const scoped = await createToken(server, { name: 'other-viewer', role: 'member', projects: ['acme/other'] });
    expect((await server.call('GET', `${FLOWS}/${id}`, undefined, scoped)).status).toBe(403);
  });

  test('cancel a waiting run, then 400 as it is terminal', async () => {
    const id = await start('waiter');
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.status === 'Waiting' ? true : undefined));
    const r = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id, status: 'Cancelled', cancelledExecutionIds: [id] });
    const run = (await server.call('GET', `${FLOWS}/${id}`)).body;
    expect(run.status).toBe('Cancelled');
    expect(run.steps.find((s: any) => s.ref === 'wait').status).toBe('cancelled');
    const again = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(again.status).toBe(400);
    expect(again.body.message).toBe('Execution already cancelled');
    // The engine no longer delivers events to it.
    expect((await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go' })).status).toBe(409);
    expect((await server.call('POST', `${FLOWS}/nope/cancel`)).status).toBe(404);
  });

  test('cancelling an orchestrator cancels its children; cancel-children leaves the parent alone', async () => {
    const parent = await start('orchestrator', { items: ['slow-a', 'slow-b'] });
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${parent}/children`)).body.count === 2 ? true : undefined));
    const cc = await server.call('POST', `${FLOWS}/${parent}/cancel-children`);
    expect(cc.status).toBe(200);
    expect(cc.body.count).toBe(2);
    const children = (await server.call('GET', `${FLOWS}/${parent}/children`)).body.children;
    expect(children.map((c: any) => c.status)).toEqual(['Cancelled', 'Cancelled']);
    // The parent was not cancelled by that call: its flow step fails because its children did not complete.
    const run = await waitForRun(server, parent);
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/child run .* ended cancelled/);

    const second = await start('orchestrator', { items: ['slow-c'] });
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${second}/children`)).body.count === 1 ? true : undefined));
    const cancelled = await server.call('POST', `${FLOWS}/${second}/cancel`);
    expect(cancelled.body.cancelledExecutionIds).toHaveLength(2);
    expect((await server.call('GET', `${FLOWS}/${second}/children`)).body.children[0].status).toBe('Cancelled');
  });

  test('rerun: only terminal flow runs; overrides merge; a child rerun keeps its parent', async () => {
    const waiting = await start('waiter');
    const busy = await server.call('POST', `${FLOWS}/${waiting}/rerun`, {});
    expect(busy.status).toBe(400);
    expect(busy.body.message).toMatch(/cannot be rerun while/);
    await server.call('POST', `${FLOWS}/${waiting}/cancel`);

    const failed = await waitForRun(server, await start('failing'));
    expect(failed.status).toBe('Failed');
    const r = await server.call('POST', `${FLOWS}/${failed.id}/rerun`, { payloadOverrides: { path: '/fixed' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ taskType: 'failing', rerunOfExecutionId: failed.id });
    const rerun = await waitForRun(server, r.body.id);
    expect(rerun).toMatchObject({ status: 'Completed', rerunOfExecutionId: failed.id, rerunType: 'rerun' });
    expect(rerun.payload).toMatchObject({ path: '/fixed', target: target.url });
    const listed = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&taskType=failing`)).body.runs;
    expect(listed.find((x: any) => x.id === r.body.id).rerunOfExecutionId).toBe(failed.id);

    const parent = await waitForRun(server, await start('orchestrator', { items: ['one'] }));
    const child = parent.children[0];
    const childRerun = await server.call('POST', `${FLOWS}/${child.id}/rerun`, {});
    expect(childRerun.status).toBe(201);
    expect(childRerun.body.parentExecutionId).toBe(parent.id);
    expect((await server.call('GET', `${FLOWS}/${parent.id}/children`)).body.count).toBe(2);

    const cicd = await seedRun({ executionMode: 'cicd', status: 'failed' });
    expect((await server.call('POST', `${FLOWS}/${cicd.id}/rerun`, {})).status).toBe(400);
    expect((await server.call('POST', `${FLOWS}/${failed.id}/rerun`, { payloadOverrides: [] })).status).toBe(400);
  });

  test('logs: the run, each child of an orchestrator, and 400 for cicd runs', async () => {
    const parent = await waitForRun(server, await start('orchestrator', { items: ['x1', 'x2'] }));
    const logs = await server.call('GET', `${FLOWS}/${parent.id}/logs`);
    expect(logs.status).toBe(200);
    expect(logs.body.logs.some((l: any) => /Started child run/.test(l.message))).toBe(true);
    expect(logs.body.children).toHaveLength(2);
    expect(logs.body.children[0].logs.map((l: any) => l.message)).toContain(`child ${logs.body.children[0].id === parent.children[0].id ? 'x1' : 'x2'} done`);
    const cicd = await seedRun({ executionMode: 'cicd' });
    const refused = await server.call('GET', `${FLOWS}/${cicd.id}/logs`);
    expect(refused.status).toBe(400);
    expect(refused.body.message).toBe('Logs only available for flow executions');
    expect((await server.call('GET', `${FLOWS}/00000000-0000-0000-0000-000000000000/logs`)).status).toBe(404);
  });
});

describe('engine unavailable', () => {
  test('POST /run answers 503 and records nothing', async () => {
    const before = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&limit=1`)).body.totalCount;
    await server.services.engine.shutdown();
    const r = await server.call('POST', `${FLOWS}/run`, body('parallel'));
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
    expect((await server.call('GET', '/readyz', undefined, null)).status).toBe(503);
    expect((await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&limit=1`)).body.totalCount).toBe(before);
  });
});
