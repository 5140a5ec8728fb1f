import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually, waitForRun } from '../support/server.js';

// The real server process (`node dist/main.js`) on an external PostgreSQL, driven over HTTP only.
// (In ESM mode the `jest` object is not a global: timeouts go as the third argument.)
const TIMEOUT = 120_000;

let server: ServerProcess;
const target = new Recorder();
const REPO = 'acme/app';

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path === '/fail' ? { status: 500, body: { error: 'boom' } } : undefined));
  server = await startServerProcess({ DATABASE_URL: await freshDatabaseUrl('e2e') });
  const project = await server.call('PUT', `/api/v1/projects/${REPO}`, { provider: 'github', owners: ['owner@acme.io'] });
  expect(project.status).toBe(201);
}, TIMEOUT);

afterAll(() => endServer(server, [() => target.stop()], { exitsCleanly: true }), TIMEOUT);

const start = async (id: string, params: Record<string, unknown> = {}) => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id, repositoryIdentifier: REPO, target: target.url, ...params } });
  expect(r.status).toBe(201);
  expect(typeof r.body.id).toBe('string');
  return r.body.id as string;
};
const step = (run: any, ref: string) => run.steps.find((s: any) => s.ref === ref);
const detail = async (id: string) => {
  const r = await server.call('GET', `/sfp/api/flows/${id}`);
  expect(r.status).toBe(200);
  return r.body;
};

test('errors come in the sfp envelope {statusCode, message, error}: 401 without a valid token, 400 on bad input, 404 for unknown runs', async () => {
  const none = await server.call('GET', `/sfp/api/flows/runs?repositoryIdentifier=${REPO}`, undefined, null);
  expect(none.status).toBe(401);
  expect(none.body).toEqual({ statusCode: 401, message: 'Missing bearer token', error: 'Unauthorized' });
  expect(none.headers.get('www-authenticate')).toBe('Bearer');

  const wrong = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'two-calls', repositoryIdentifier: REPO } }, 'not-a-real-token');
  expect(wrong.status).toBe(401);
  expect(wrong.body).toEqual({ statusCode: 401, message: 'Invalid or revoked token', error: 'Unauthorized' });

  const invalid = await server.call('POST', '/sfp/api/flows/run', { payload: { repositoryIdentifier: REPO } });
  expect(invalid.status).toBe(400);
  expect(invalid.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: ['payload.id: required: the flow type id'] });

  const unknownProject = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'two-calls', repositoryIdentifier: 'acme/unknown', target: target.url } });
  expect(unknownProject.status).toBe(400);
  expect(unknownProject.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: ['payload.repositoryIdentifier: project "acme/unknown" is not registered'] });

  const missing = await server.call('GET', '/sfp/api/flows/no-such-run');
  expect(missing.status).toBe(404);
  expect(missing.body).toEqual({ statusCode: 404, message: 'Execution no-such-run not found', error: 'Not Found' });
}, TIMEOUT);

test('two-calls runs to completion: each call once, in order, with step records and an ordered log', async () => {
  const id = await start('two-calls', { sleepSeconds: 1 });
  const run = await waitForRun(server, id, ['Completed', 'Failed', 'Cancelled'], 60_000);
  expect(run.status).toBe('Completed');
  expect(run.engineStatus).toBe('completed');
  expect(run.success).toBe(true);
  expect(run.result).toEqual({ firstStatus: 200, secondStatus: 200 });

  // The target saw /first then /second, exactly once each, the sleep between them.
  const calls = target.requests.filter((r) => r.path === '/first' || r.path === '/second');
  expect(calls.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /first', 'POST /second']);
  expect(calls[0].json).toEqual({ n: 1 });
  expect(calls[1].json).toEqual({ previous: 200 });
  expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(900);

  expect(run.steps.map((s: any) => s.ref).sort()).toEqual(['first', 'pause', 'second']);
  for (const s of run.steps) {
    expect(s.status).toBe('completed');
    expect(s.startedAt).toEqual(expect.any(String));
    expect(s.finishedAt).toEqual(expect.any(String));
    expect(Date.parse(s.finishedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
  }
  // Dependencies are respected: each step starts after the one it depends on finished.
  expect(Date.parse(step(run, 'pause').startedAt)).toBeGreaterThanOrEqual(Date.parse(step(run, 'first').finishedAt));
  expect(Date.parse(step(run, 'second').startedAt)).toBeGreaterThanOrEqual(Date.parse(step(run, 'pause').finishedAt));
  expect(step(run, 'first').output.status).toBe(200);
  expect(step(run, 'pause').output.sleptMs).toBeGreaterThanOrEqual(900);

  const logs = await server.call('GET', `/sfp/api/flows/${id}/logs`);
  expect(logs.status).toBe(200);
  expect(logs.body.id).toBe(id);
  expect(logs.body.status).toBe('Completed');
  const lines: any[] = logs.body.logs;
  // Sequence numbers are dense and ordered, starting at 1.
  expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
  expect(logs.body.nextOffset).toBe(lines.length);
  const messages: string[] = lines.map((l) => l.message);
  const firstCall = messages.findIndex((m) => /^POST http:\/\/127\.0\.0\.1:\d+\/first → 200/.test(m));
  const secondCall = messages.findIndex((m) => /^POST http:\/\/127\.0\.0\.1:\d+\/second → 200/.test(m));
  expect(firstCall).toBeGreaterThanOrEqual(0);
  expect(secondCall).toBeGreaterThan(firstCall);
  expect(messages.filter((m) => / → 200/.test(m))).toHaveLength(2);
  expect(messages).toContain('Run completed');
  expect(messages.indexOf('Run completed')).toBeGreaterThan(secondCall);
}, TIMEOUT);

test('a sleeping run can be cancelled once; its steps are cancelled and its next call never happens', async () => {
  const id = await start('sleeper');
  // Wait until the run is inside its 300 s sleep.
  await eventually(async () => {
    const logs = await server.call('GET', `/sfp/api/flows/${id}/logs`);
    return logs.body.logs?.some((l: any) => /^Sleeping until /.test(l.message)) ? true : undefined;
  }, 30_000, 'the sleeper to start sleeping');
  const sleeping = await detail(id);
  expect(['Running', 'Waiting']).toContain(sleeping.status);
  expect(step(sleeping, 'nap').status).not.toBe('completed');

  const cancel = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
  expect(cancel.status).toBe(200);
  expect(cancel.body).toEqual({ id, status: 'Cancelled', cancelledExecutionIds: [id] });

  const run = await detail(id);
  expect(run.status).toBe('Cancelled');
  expect(run.engineStatus).toBe('cancelled');
  expect(run.finishedAt).toEqual(expect.any(String));
  expect(run.steps.length).toBeGreaterThanOrEqual(1);
  expect(step(run, 'nap').status).toBe('cancelled');
  for (const s of run.steps) expect(s.status).toBe('cancelled');

  const again = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
  expect(again.status).toBe(400);
  expect(again.body).toEqual({ statusCode: 400, message: 'Execution already cancelled', error: 'Bad Request' });

  // Give a (wrongly) still-running workflow a chance to act, then check nothing moved.
  await new Promise((r) => setTimeout(r, 2000));
  expect(target.to('/after-nap')).toHaveLength(0);
  const later = await detail(id);
  expect(later.status).toBe('Cancelled');
  expect(later.steps.map((s: any) => s.status)).toEqual(run.steps.map((s: any) => s.status));
  const logs = await server.call('GET', `/sfp/api/flows/${id}/logs`);
  expect(logs.body.status).toBe('Cancelled');
  expect(logs.body.logs.map((l: any) => l.message)).toContain('Run cancelled by token:admin');
}, TIMEOUT);

test('a failed run can be rerun with payload overrides; the rerun is linked to the original', async () => {
  const failedId = await start('failing');
  const failed = await waitForRun(server, failedId, ['Completed', 'Failed', 'Cancelled'], 60_000);
  expect(failed.status).toBe('Failed');
  expect(failed.success).toBe(false);
  expect(step(failed, 'call').status).toBe('failed');
  expect(step(failed, 'call').error).toMatch(/HTTP 500/);
  expect(target.to('/fail')).toHaveLength(1);

  const rerun = await server.call('POST', `/sfp/api/flows/${failedId}/rerun`, { payloadOverrides: { path: '/ok' } });
  expect(rerun.status).toBe(201);
  expect(rerun.body.rerunOfExecutionId).toBe(failedId);
  expect(rerun.body.taskType).toBe('failing');
  const rerunId = rerun.body.id as string;
  expect(rerunId).not.toBe(failedId);

  const done = await waitForRun(server, rerunId, ['Completed', 'Failed', 'Cancelled'], 60_000);
  expect(done.status).toBe('Completed');
  expect(done.rerunOfExecutionId).toBe(failedId);
  expect(done.rerunType).toBe('rerun');
  expect(done.payload).toMatchObject({ id: 'failing', target: target.url, path: '/ok' });
  expect(target.to('/ok')).toHaveLength(1);
  expect(target.to('/fail')).toHaveLength(1);

  const list = await server.call('GET', `/sfp/api/flows/runs?repositoryIdentifier=${REPO}`);
  expect(list.status).toBe(200);
  const listed = list.body.runs.find((r: any) => r.id === rerunId);
  expect(listed).toMatchObject({ id: rerunId, rerunOfExecutionId: failedId, status: 'Completed', taskType: 'failing' });
  const original = list.body.runs.find((r: any) => r.id === failedId);
  expect(original).toMatchObject({ id: failedId, status: 'Failed' });
  expect(original.rerunOfExecutionId).toBeUndefined();
}, TIMEOUT);
