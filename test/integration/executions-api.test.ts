import http from 'node:http';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { LogFollower, type LogState } from '../../src/core/logs/log-follower.js';
import type { Run } from '../../src/db/entities/run.js';
import { MAX_STREAMS_PER_CALLER } from '../../src/http/workflow-platform/log-stream.js';
import { Recorder } from '../support/recorder.js';
import { ADMIN_TOKEN, createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The workflow platform's executions over the real server: the same runs as every other dialect.
let server: TestServer;
const target = new Recorder();
const EX = '/api/v1/executions';
const t: Record<string, string> = {};
let failSecond = true;

const EXECUTION_FIELDS = ['id', 'flowId', 'flowName', 'namespace', 'flowRevision', 'status', 'coreStatus', 'inputs', 'result', 'error', 'trigger',
  'retryOf', 'parentExecutionId', 'tasksTotal', 'tasksExecuted', 'createdAt', 'startedAt', 'finishedAt', 'durationMs'].sort();
const TASK_FIELDS = ['taskName', 'taskType', 'status', 'outputs', 'startedAt', 'finishedAt', 'attempt'];

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path.endsWith('/fail') ? { status: 500, body: { error: 'boom' } } : undefined));
  target.respond((r) => (r.path === '/second' && failSecond ? { status: 502, body: { error: 'not yet' } } : undefined));
  target.respond((r) => (r.path === '/slow' ? { delayMs: 3_000 } : undefined));
  server = await startTestServer();
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  await createProject(server, 'acme/other', { owners: ['owner@acme.io'], namespace: 'other-space' });
  t.dev = await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io' });
  t.viewer = await createToken(server, { name: 'dashboard', role: 'viewer', projects: ['acme/app'] });
  t.other = await createToken(server, { name: 'other-only', role: 'member', email: 'owner@acme.io', projects: ['acme/other'] });
  t.streamer = await createToken(server, { name: 'streamer', role: 'viewer' });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

/** Starts a flow over the sfp API and returns the run id. */
async function startSfp(flow: string, params: Record<string, unknown> = {}, token = t.dev, repo = 'acme/app') {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: flow, repositoryIdentifier: repo, ...params } }, token);
  expect(r.status).toBe(201);
  return r.body.id as string;
}

/** Records a finished run without running it (trigger kinds no API here can start). */
async function seed(flow: string, overrides: Partial<Run>, repo = 'acme/app'): Promise<Run> {
  const run = await server.services.runs.prepare({ payload: { id: flow, target: 'http://127.0.0.1:9' }, repositoryIdentifier: repo, triggeredBy: 'seed@acme.io' });
  Object.assign(run, { status: 'completed', startedAt: new Date(Date.now() - 2_000), finishedAt: new Date(Date.now() - 1_000) }, overrides);
  await server.services.store.insert(run);
  return run;
}

const get = (id: string, token?: string | null) => server.call('GET', `${EX}/${id}`, undefined, token);
const list = async (qs: string, token?: string) => {
  const r = await server.call('GET', `${EX}${qs}`, undefined, token);
  expect(r.status).toBe(200);
  return r.body as any[];
};
const untilStatus = (id: string, statuses: string[]) =>
  eventually(async () => {
    const r = await get(id);
    return statuses.includes(r.body?.execution?.status) ? r.body : undefined;
  }, 30_000, `execution ${id} reaching ${statuses.join('/')}`);
const untilTask = (id: string, task: string, status: string) =>
  eventually(async () => ((await get(id)).body?.tasks?.find((x: any) => x.taskName === task)?.status === status ? true : undefined), 30_000, `${task} ${status}`);

const expectError = (r: { status: number; body: any }, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(typeof r.body.error).toBe('string');
};

describe('GET /api/v1/executions', () => {
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ids.ok = await startSfp('failing', { target: target.url, path: '/ok' });
    ids.failed = await startSfp('failing', { target: target.url });
    ids.byApp = await startSfp('failing', { target: target.url, path: '/ok' }, ADMIN_TOKEN);
    ids.other = await startSfp('failing', { target: target.url, path: '/ok' }, t.other, 'acme/other');
    for (const id of [ids.ok, ids.failed, ids.byApp, ids.other]) await waitForRun(server, id);
    ids.cron = (await seed('chatty', { triggeredBy: 'cron', requestedBy: 'owner@acme.io', schedulePath: 'nightly', createdAt: new Date(Date.now() - 2 * 3_600_000) })).id;
    ids.slack = (await seed('chatty', { callback: { type: 'slack', slack: { channel: 'C1' } } })).id;
    ids.child = (await seed('chatty', { parentRunId: ids.ok })).id;
    ids.retry = (await seed('chatty', { triggeredBy: 'retry', requestedBy: 'dev@acme.io', rerunType: 'retry', rerunOfExecutionId: ids.failed })).id;
    ids.timedOut = (await seed('chatty', { status: 'timed_out', error: 'timed out: the run passed its expiry' })).id;
  });

  test('newest first, every run of the caller\'s namespaces (sfp runs included), each with the execution fields', async () => {
    const all = await list('?limit=500');
    const seen = all.map((e) => e.id);
    for (const id of [ids.ok, ids.failed, ids.byApp, ids.other, ids.slack, ids.child, ids.retry]) expect(seen).toContain(id);
    const created = all.map((e) => Date.parse(e.createdAt));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    for (const e of all) expect(Object.keys(e).sort()).toEqual(EXECUTION_FIELDS);
    const ok = all.find((e) => e.id === ids.ok);
    expect(ok).toMatchObject({
      flowId: 'failing', flowName: 'Fails on a bad path', namespace: 'acme.app', flowRevision: null, status: 'SUCCESS', coreStatus: 'completed',
      inputs: { target: target.url, path: '/ok' }, error: null, trigger: { type: 'manual', by: 'dev@acme.io', triggerId: null },
      retryOf: null, parentExecutionId: null, tasksTotal: 1, tasksExecuted: 1,
    });
    expect(ok.durationMs).toBe(Date.parse(ok.finishedAt) - Date.parse(ok.startedAt));
    expect(all.find((e) => e.id === ids.other).namespace).toBe('other-space');
  });

  test('another namespace\'s executions are hidden; its namespace is not found', async () => {
    const mine = await list('?limit=500', t.other);
    expect(mine.map((e) => e.id)).toEqual([ids.other]);
    expectError(await server.call('GET', `${EX}?namespace=acme.app`, undefined, t.other), 404, 'not_found');
    expectError(await server.call('GET', `${EX}?namespace=nowhere`), 404, 'not_found');
    expect((await list('?namespace=other-space')).map((e) => e.id)).toEqual([ids.other]);
    expect((await list('?namespace=acme.app&limit=500')).every((e) => e.namespace === 'acme.app')).toBe(true);
  });

  test('filters: flowId, status list, trigger, since (duration or RFC 3339)', async () => {
    const failing = await list('?flowId=failing&limit=500');
    expect(failing.map((e) => e.id).sort()).toEqual([ids.ok, ids.failed, ids.byApp, ids.other].sort());
    const bad = await list('?status=FAILED,TIMED_OUT&limit=500');
    expect(bad.map((e) => e.id)).toEqual(expect.arrayContaining([ids.failed, ids.timedOut]));
    expect(bad.every((e) => ['FAILED', 'TIMED_OUT'].includes(e.status))).toBe(true);
    expect((await list('?status=FAILED&status=TIMED_OUT&limit=500')).length).toBe(bad.length);

    const byTrigger = async (type: string) => (await list(`?trigger=${type}&limit=500`)).map((e) => e.id);
    expect(await byTrigger('cron')).toEqual([ids.cron]);
    expect(await byTrigger('slack')).toEqual([ids.slack]);
    expect(await byTrigger('subflow')).toEqual([ids.child]);
    expect(await byTrigger('retry')).toEqual([ids.retry]);
    expect(await byTrigger('api')).toEqual([ids.byApp]);
    expect(await byTrigger('manual')).toEqual(expect.arrayContaining([ids.ok, ids.failed, ids.other]));
    expect(await byTrigger('webhook')).toEqual([]);
    expect((await list(`?trigger=cron,retry&limit=500`)).map((e) => e.id).sort()).toEqual([ids.cron, ids.retry].sort());
    const cron = (await list('?trigger=cron')).at(0);
    expect(cron.trigger).toEqual({ type: 'cron', by: 'owner@acme.io', triggerId: 'nightly' });
    expect((await list('?trigger=retry')).at(0)).toMatchObject({ trigger: { type: 'retry', by: 'dev@acme.io' }, retryOf: ids.failed });
    expect((await list('?trigger=subflow')).at(0)).toMatchObject({ parentExecutionId: ids.ok });

    expect((await list('?since=30m&limit=500')).map((e) => e.id)).not.toContain(ids.cron);
    expect((await list('?since=3h&limit=500')).map((e) => e.id)).toContain(ids.cron);
    const at = new Date(Date.now() - 3 * 3_600_000).toISOString();
    expect((await list(`?since=${encodeURIComponent(at)}&limit=500`)).map((e) => e.id)).toContain(ids.cron);
    expect((await list(`?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`))).toEqual([]);
  });

  test('limit 1–500, offset ≤ 10,000 and well-formed filters, else 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['?limit=0', 'limit'], ['?limit=501', 'limit'], ['?limit=ten', 'limit'], ['?offset=10001', 'offset'], ['?offset=-1', 'offset'],
      ['?status=DONE', 'status'], ['?status=success', 'status'], ['?trigger=pager', 'trigger'], ['?since=yesterday', 'since'],
      ['?before=nope', 'before'], ['?token=abc', '(query)'],
    ];
    for (const [qs, field] of cases) {
      const r = await server.call('GET', `${EX}${qs}`);
      expect({ qs, status: r.status, code: r.body.code }).toEqual({ qs, status: 400, code: 'bad_request' });
      expect(r.body.details).toEqual([expect.objectContaining({ location: 'query', message: expect.any(String) })]);
      if (field !== '(query)') expect(r.body.details[0].field).toBe(field);
    }
    expect((await list('?limit=500')).length).toBeGreaterThan(0);
    expect(await list('?offset=10000')).toEqual([]);
    // `before` must name an execution the caller can see.
    expectError(await server.call('GET', `${EX}?before=${ids.ok}`, undefined, t.other), 400, 'bad_request');
  });

  test('pages by offset and by before=<id> give the same order, every execution once', async () => {
    const all = (await list('?limit=500')).map((e) => e.id);
    expect(all.length).toBeGreaterThanOrEqual(9);
    expect((await list('?limit=3')).map((e) => e.id)).toEqual(all.slice(0, 3));
    expect((await list('?limit=3&offset=3')).map((e) => e.id)).toEqual(all.slice(3, 6));
    const seen: string[] = [];
    let qs = '?limit=2';
    for (;;) {
      const page = (await list(qs)).map((e) => e.id);
      if (!page.length) break;
      seen.push(...page);
      qs = `?limit=2&before=${page.at(-1)}`;
    }
    expect(seen).toEqual(all);
    expect((await list(`?limit=2&offset=1&before=${all[1]}`)).map((e) => e.id)).toEqual(all.slice(3, 5));
  });

  test('a viewer reads; no token is 401', async () => {
    expect((await list('?limit=500', t.viewer)).map((e) => e.id)).not.toContain(ids.other);
    expectError(await server.call('GET', EX, undefined, null), 401, 'authentication_required');
  });
});

describe('GET /api/v1/executions/{id}', () => {
  test('the execution and every task in definition order, canonical task types, outputs as JSON strings', async () => {
    const id = await startSfp('chatty', { name: 'get' });
    const body = await untilStatus(id, ['SUCCESS']);
    expect(Object.keys(body).sort()).toEqual(['execution', 'tasks']);
    expect(Object.keys(body.execution).sort()).toEqual(EXECUTION_FIELDS);
    expect(body.execution).toMatchObject({ id, flowId: 'chatty', status: 'SUCCESS', tasksTotal: 11, tasksExecuted: 11, inputs: { name: 'get' } });
    expect(body.tasks.map((x: any) => x.taskName)).toEqual(['say1', 'nap1', 'say2', 'nap2', 'say3', 'nap3', 'say4', 'nap4', 'say5', 'nap5', 'say6']);
    expect(body.tasks[0]).toEqual({
      taskName: 'say1', taskType: 'util.log', status: 'SUCCESS', outputs: expect.any(String),
      startedAt: expect.any(String), finishedAt: expect.any(String), attempt: 1,
    });
    expect(JSON.parse(body.tasks[0].outputs)).toMatchObject({ message: 'get line 1' });
    expect(body.tasks[1]).toMatchObject({ taskName: 'nap1', taskType: 'util.sleep' });
    for (const task of body.tasks) expect(Object.keys(task)).toEqual(TASK_FIELDS);
  });

  test('a failed task carries its error; a step timeout is TIMED_OUT; unstarted tasks of an ended run are skipped', async () => {
    const failed = await startSfp('failing', { target: target.url });
    const f = await untilStatus(failed, ['FAILED']);
    expect(f.execution).toMatchObject({ status: 'FAILED', coreStatus: 'failed', error: expect.any(String), tasksExecuted: 1 });
    expect(f.tasks).toEqual([expect.objectContaining({ taskName: 'call', taskType: 'http.request', status: 'FAILED', outputs: null, error: expect.stringMatching(/500/) })]);

    const slow = await startSfp('slow', { target: target.url });
    const s = await untilStatus(slow, ['FAILED']);
    expect(s.tasks[0]).toMatchObject({ taskName: 'call', status: 'TIMED_OUT', error: expect.stringMatching(/^timed out after 1s/) });

    const tolerant = await startSfp('tolerant', { target: target.url });
    const tl = await untilStatus(tolerant, ['SUCCESS', 'FAILED']);
    const byName = Object.fromEntries(tl.tasks.map((x: any) => [x.taskName, x]));
    expect(byName.optional).toMatchObject({ status: 'FAILED', error: expect.any(String) });
    expect(byName.afterOptional.status).toBe('SUCCESS');
    expect(['SKIPPED']).toContain(byName.needsGuarded.status);
    expect(tl.tasks.map((x: any) => x.taskName)).toEqual(['optional', 'afterOptional', 'guarded', 'needsGuarded', 'grandchild']);
  });

  test('an approval task is flow.approval with its approvalId', async () => {
    const id = await startSfp('gated', { target: target.url });
    await untilTask(id, 'approve', 'WAITING');
    const body = (await get(id)).body;
    expect(body.execution.status).toBe('WAITING');
    expect(body.execution.coreStatus).toBe('suspended');
    const approve = body.tasks.find((x: any) => x.taskName === 'approve');
    expect(approve).toMatchObject({ taskType: 'flow.approval', status: 'WAITING', outputs: null, approvalId: expect.any(String) });
    expect(body.tasks.find((x: any) => x.taskName === 'call')).toMatchObject({ taskType: 'http.request', status: 'PENDING', attempt: 0, startedAt: null });
    expect(body.tasks.find((x: any) => x.taskName === 'call').approvalId).toBeUndefined();
    await server.call('POST', `${EX}/${id}/cancel`);
  });

  test('a cicd-mode execution is one task, pipeline (cicd.run)', async () => {
    const run = await seed('chatty', { executionMode: 'cicd', status: 'failed', error: 'pipeline failed' });
    const body = (await get(run.id)).body;
    expect(body.execution).toMatchObject({ status: 'FAILED', tasksTotal: 1, tasksExecuted: 1, error: 'pipeline failed' });
    expect(body.tasks).toEqual([{ taskName: 'pipeline', taskType: 'cicd.run', status: 'FAILED', outputs: null, startedAt: expect.any(String), finishedAt: expect.any(String), error: 'pipeline failed', attempt: 1 }]);
  });

  test('unknown, malformed or another namespace\'s execution → 404', async () => {
    const other = await startSfp('failing', { target: target.url, path: '/ok' }, t.other, 'acme/other');
    expectError(await get(other, t.viewer), 404, 'not_found');
    expectError(await get('0193c2aa-0000-7000-8000-000000000000'), 404, 'not_found');
    expectError(await get('not-a-uuid'), 404, 'not_found');
    expect((await get(other, t.other)).status).toBe(200);
  });
});

describe('cancel and retry', () => {
  test('cancel → 200 {execution, tasks}; again → 409 with the status; a viewer → 403; no token → 401; another namespace → 404', async () => {
    const id = await startSfp('sleeper');
    await untilTask(id, 'nap', 'WAITING');
    expectError(await server.call('POST', `${EX}/${id}/cancel`, undefined, t.viewer), 403, 'forbidden');
    expectError(await server.call('POST', `${EX}/${id}/cancel`, undefined, null), 401, 'authentication_required');
    expectError(await server.call('POST', `${EX}/${id}/cancel`, undefined, t.other), 404, 'not_found');
    const r = await server.call('POST', `${EX}/${id}/cancel`, undefined, t.dev);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['execution', 'tasks']);
    expect(r.body.execution).toMatchObject({ id, status: 'CANCELLED', coreStatus: 'cancelled' });
    expect(r.body.tasks).toEqual([
      expect.objectContaining({ taskName: 'nap', status: 'CANCELLED', error: expect.any(String) }),
      expect.objectContaining({ taskName: 'after', status: 'CANCELLED' }),
    ]);
    const again = await server.call('POST', `${EX}/${id}/cancel`, undefined, t.dev);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'execution is already CANCELLED', code: 'conflict', status: 'CANCELLED' });
  });

  test('retry → 202, a new execution that keeps the successful tasks; only from an ended, unsuccessful one', async () => {
    failSecond = true;
    const id = await startSfp('two-calls', { target: target.url, sleepSeconds: 0.1 });
    const failed = await untilStatus(id, ['FAILED']);
    expect(failed.tasks.map((x: any) => x.status)).toEqual(['SUCCESS', 'SUCCESS', 'FAILED']);
    const firstCalls = target.to('/first').length;

    expectError(await server.call('POST', `${EX}/${id}/retry`, undefined, t.viewer), 403, 'forbidden');
    failSecond = false;
    const r = await server.call('POST', `${EX}/${id}/retry`, undefined, t.dev);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ executionId: expect.any(String), status: 'QUEUED', tasksTotal: 3, retryOf: id });
    expect(r.headers.get('location')).toBe(`${EX}/${r.body.executionId}`);
    const retried = await untilStatus(r.body.executionId, ['SUCCESS', 'FAILED']);
    expect(retried.execution).toMatchObject({ status: 'SUCCESS', retryOf: id, trigger: { type: 'retry', by: 'dev@acme.io' }, inputs: failed.execution.inputs, namespace: 'acme.app' });
    expect(retried.tasks.map((x: any) => x.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
    expect(retried.tasks[0].outputs).toBe(failed.tasks[0].outputs);
    expect(target.to('/first').length).toBe(firstCalls);

    const done = await server.call('POST', `${EX}/${r.body.executionId}/retry`, undefined, t.dev);
    expect(done.status).toBe(409);
    expect(done.body).toMatchObject({ code: 'conflict', status: 'SUCCESS' });
    const running = await startSfp('sleeper');
    const live = await server.call('POST', `${EX}/${running}/retry`, undefined, t.dev);
    expect(live.status).toBe(409);
    expect(live.body).toMatchObject({ code: 'conflict', status: expect.stringMatching(/^(QUEUED|RUNNING|WAITING)$/) });
    await server.call('POST', `${EX}/${running}/cancel`);
    expectError(await server.call('POST', `${EX}/${running}/retry`, undefined, t.other), 404, 'not_found');
  });
});

/** A WebSocket client collecting frames until the server closes. */
function stream(path: string, opts: { token?: string | null; protocols?: string[] } = {}) {
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path, opts.protocols ?? [], token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const frames: { at: number; frame: any }[] = [];
  ws.on('message', (data) => frames.push({ at: Date.now(), frame: JSON.parse(String(data)) }));
  let header: string | undefined;
  ws.once('upgrade', (res) => (header = res.headers['sec-websocket-protocol'] as string | undefined));
  const opened = new Promise<{ protocol: string; header: string | undefined }>((resolve, reject) => {
    ws.once('open', () => resolve({ protocol: ws.protocol, header }));
    ws.once('unexpected-response', () => reject(new Error('refused')));
    ws.once('error', reject);
  });
  opened.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return { ws, frames, opened, closed, logs: () => frames.map((f) => f.frame).filter((f) => f.type === 'log') };
}

/** The plain HTTP answer to an upgrade the server refuses. */
function refused(path: string, opts: { token?: string | null; protocols?: string[] } = {}) {
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path, opts.protocols ?? [], token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return new Promise<{ status: number; body: any; headers: Record<string, unknown> }>((resolve, reject) => {
    ws.once('open', () => reject(new Error('upgraded')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }));
    });
  });
}

describe('logs', () => {
  test('JSON without an upgrade: the lines after offset, at most limit', async () => {
    const id = await startSfp('chatty', { name: 'json' });
    await untilStatus(id, ['SUCCESS']);
    const all = (await server.call('GET', `${EX}/${id}/logs`)).body;
    expect(all.map((l: any) => l.seq)).toEqual(all.map((_: unknown, i: number) => i + 1));
    expect(all[0]).toEqual({ seq: 1, timestamp: expect.any(String), level: 'INFO', task: null, message: expect.stringMatching(/^Run of chatty started/) });
    expect(all.find((l: any) => l.message === 'json line 1')).toMatchObject({ task: 'say1', level: 'INFO' });
    const page = (await server.call('GET', `${EX}/${id}/logs?offset=2&limit=3`)).body;
    expect(page).toEqual(all.slice(2, 5));
    expect((await server.call('GET', `${EX}/${id}/logs?offset=${all.length}`)).body).toEqual([]);
    expectError(await server.call('GET', `${EX}/${id}/logs?limit=1001`), 400, 'bad_request');
    expectError(await server.call('GET', `${EX}/${id}/logs?offset=${all.length + 1}`), 400, 'bad_request');
    expect((await server.call('GET', `${EX}/${id}/logs`, undefined, t.viewer)).status).toBe(200);
    expectError(await server.call('GET', `${EX}/${id}/logs`, undefined, t.other), 404, 'not_found');
  });

  test('WebSocket: the lines so far, then new lines as they are written, status frames, the end, close 1000', async () => {
    const id = await startSfp('chatty', { name: 'live' });
    const s = stream(`${EX}/${id}/logs`);
    expect(await s.opened).toEqual({ protocol: '', header: undefined });
    const { code } = await s.closed;
    expect(code).toBe(1000);
    const frames = s.frames.map((f) => f.frame);
    const logs = s.logs();
    expect(logs.map((l) => l.seq)).toEqual(logs.map((_, i) => i + 1));
    expect(logs.filter((l) => /^live line/.test(l.message)).map((l) => l.message)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `live line ${n}`));
    expect(logs.find((l) => l.message === 'live line 3')).toMatchObject({ type: 'log', task: 'say3', level: 'INFO', timestamp: expect.any(String) });
    const statuses = frames.filter((f) => f.type === 'status').map((f) => f.status);
    // The status when the stream opened (its sleeps park the execution: WAITING), each change seen, the last one.
    expect(['QUEUED', 'RUNNING', 'WAITING']).toContain(statuses[0]);
    expect(statuses.at(-1)).toBe('SUCCESS');
    expect(statuses.every((x, i) => i === 0 || x !== statuses[i - 1])).toBe(true);
    expect(frames.at(-1)).toEqual({ type: 'end', status: 'SUCCESS', seq: logs.at(-1).seq });
    // Live: the first lines arrived while the run was still going.
    const run = (await get(id)).body.execution;
    const firstLine = s.frames.find((f) => f.frame.message === 'live line 1')!;
    expect(firstLine.at).toBeLessThan(Date.parse(run.finishedAt));
    // Every line the JSON fallback has, in the same form.
    const stored = (await server.call('GET', `${EX}/${id}/logs`)).body;
    expect(logs.map(({ type: _type, ...l }) => l)).toEqual(stored);
  });

  test('WebSocket: resume from offset; token offered as a subprotocol, flowgate.logs.v1 selected, never echoed', async () => {
    const id = await startSfp('chatty', { name: 'resume' });
    await untilStatus(id, ['SUCCESS']);
    const total = (await server.call('GET', `${EX}/${id}/logs`)).body.length;
    const s = stream(`${EX}/${id}/logs?offset=3`, { token: null, protocols: ['flowgate.logs.v1', `bearer.${t.viewer}`] });
    expect(await s.opened).toEqual({ protocol: 'flowgate.logs.v1', header: 'flowgate.logs.v1' });
    expect((await s.closed).code).toBe(1000);
    const logs = s.logs();
    expect(logs.map((l) => l.seq)).toEqual(Array.from({ length: total - 3 }, (_, i) => i + 4));
    expect(s.frames.map((f) => f.frame.type)).toEqual([...logs.map(() => 'log'), 'status', 'end']);
    expect(s.frames.at(-1)!.frame).toEqual({ type: 'end', status: 'SUCCESS', seq: total });
  });

  test('WebSocket: a status frame when the execution waits, and when it goes on', async () => {
    const id = await startSfp('waiter');
    await untilTask(id, 'wait', 'WAITING');
    const s = stream(`${EX}/${id}/logs`, { token: t.dev });
    await eventually(async () => (s.frames.some((f) => f.frame.type === 'status' && f.frame.status === 'WAITING') ? true : undefined), 10_000, 'WAITING frame');
    expect((await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go', payload: { value: 'green' } }, t.dev)).status).toBe(202);
    expect((await s.closed).code).toBe(1000);
    const frames = s.frames.map((f) => f.frame);
    expect(frames.filter((f) => f.type === 'status').map((f) => f.status)).toEqual(['WAITING', 'SUCCESS']);
    expect(frames.some((f) => f.type === 'log' && f.message === 'got green')).toBe(true);
    expect(frames.at(-1)).toMatchObject({ type: 'end', status: 'SUCCESS' });
  });

  test('WebSocket refusals are plain HTTP before the upgrade: 401, 404, 400', async () => {
    const id = await startSfp('failing', { target: target.url, path: '/ok' });
    const none = await refused(`${EX}/${id}/logs`, { token: null });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ code: 'authentication_required' });
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await refused(`${EX}/${id}/logs`, { token: 'not-a-token' })).status).toBe(401);
    const unknown = await refused(`${EX}/0193c2aa-0000-7000-8000-000000000000/logs`);
    expect(unknown).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect((await refused(`${EX}/${id}/logs`, { token: t.other })).status).toBe(404);
    // Never a token in the query.
    expect(await refused(`${EX}/${id}/logs?token=${ADMIN_TOKEN}`)).toMatchObject({ status: 400, body: { code: 'bad_request', details: [expect.objectContaining({ location: 'query' })] } });
    expect((await refused(`${EX}/${id}/logs?offset=999`)).status).toBe(400);
  });

  test('WebSocket: a revoked token closes its streams with 1008', async () => {
    const created = await server.call('POST', '/api/v1/tokens', { name: 'short-lived', role: 'viewer' });
    const id = await startSfp('sleeper');
    const s = stream(`${EX}/${id}/logs`, { token: created.body.token });
    await s.opened;
    expect((await server.call('DELETE', `/api/v1/tokens/${created.body.id}`)).status).toBe(204);
    expect((await s.closed).code).toBe(1008);
    await server.call('POST', `${EX}/${id}/cancel`);
  });

  test('lines written through the core notify flowgate_log: a follower wakes at once, not at its poll', async () => {
    const run = await seed('chatty', { status: 'running', finishedAt: null });
    const follower = new LogFollower(server.services.orm, server.services.config.databaseUrl, pino({ level: 'silent' }), { pollMs: 600_000 });
    const seen: LogState[] = [];
    follower.watch({ runId: run.id, changed: (st) => void (st && seen.push(st)), stopping: async () => undefined });
    await eventually(async () => (seen.length ? true : undefined), 5_000, 'the first state');
    // Listening by now (the first state is read again once LISTEN is up).
    await new Promise((r) => setTimeout(r, 500));
    await server.services.logs.append(run.id, [{ level: 'info', source: 'engine', group: 'run', message: 'told' }]);
    await eventually(async () => (seen.some((st) => st.logSeq === 1) ? true : undefined), 3_000, 'a wake-up by NOTIFY');
    await follower.stop();
  });

  test('other upgrade requests are answered as ordinary requests', async () => {
    const url = new URL(server.url);
    const plain = await new Promise<number>((resolve, reject) => {
      http.request({ host: url.hostname, port: url.port, path: '/healthz', headers: { connection: 'Upgrade', upgrade: 'h2c' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject).end();
    });
    expect(plain).toBe(200);
    expect(await refused('/api/v1/no-such-route')).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await refused(`${EX}?limit=0`)).toMatchObject({ status: 400, body: { code: 'bad_request' } });
  });

  test(`WebSocket: more than ${MAX_STREAMS_PER_CALLER} streams of one caller → 429`, async () => {
    const id = await startSfp('sleeper');
    const open = Array.from({ length: MAX_STREAMS_PER_CALLER }, () => stream(`${EX}/${id}/logs`, { token: t.streamer }));
    await Promise.all(open.map((s) => s.opened));
    const over = await refused(`${EX}/${id}/logs`, { token: t.streamer });
    expect(over).toMatchObject({ status: 429, body: { code: 'rate_limited' } });
    expect(over.headers['retry-after']).toBeDefined();
    // Another caller is not affected; a closed stream frees its slot.
    const other = stream(`${EX}/${id}/logs`, { token: t.dev });
    await other.opened;
    open[0].ws.close();
    await open[0].closed;
    const again = await eventually(async () => {
      const s = stream(`${EX}/${id}/logs`, { token: t.streamer });
      try {
        await s.opened;
        return s;
      } catch {
        return undefined;
      }
    }, 5_000, 'a freed slot');
    for (const s of [...open.slice(1), other, again]) s.ws.close();
    await server.call('POST', `${EX}/${id}/cancel`);
  });
});

// Last: it stops the server.
test('server stop closes open streams with 1001', async () => {
  const id = await startSfp('sleeper');
  const s = stream(`${EX}/${id}/logs`);
  await s.opened;
  await eventually(async () => (s.frames.some((f) => f.frame.type === 'status') ? true : undefined), 10_000, 'first status frame');
  const stopped = server.stop();
  const { code } = await s.closed;
  expect(code).toBe(1001);
  await stopped;
});
