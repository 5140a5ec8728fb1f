import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startRun, startTestServer, type TestServer, waitForRun } from '../support/server.js';

let server: TestServer;
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path === '/fail' ? { status: 500, body: { error: 'boom' } } : undefined));
  target.respond((r) => (r.path === '/slow' ? { delayMs: 3000 } : undefined));
  target.respond((r) => (r.path === '/left' || r.path === '/right' ? { delayMs: 400 } : undefined));
  let flaky = 0;
  target.respond((r) => (r.path === '/flaky' ? (++flaky <= 2 ? { status: 503 } : { status: 200, body: { attempt: flaky } }) : undefined));
  // The previous engine (DBOS workflows), kept for one release: Engine v2 has its own tests (executor, run-control).
  server = await startTestServer({ env: { FLOWGATE_ENGINE: 'dbos' } });
  await createProject(server);
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

const start = (id: string, params: Record<string, unknown> = {}, callback?: unknown) => startRun(server, id, { target: target.url, ...params }, callback);
const step = (run: any, ref: string) => run.steps.find((s: any) => s.ref === ref);

test('independent steps run in parallel and the join waits for both', async () => {
  const run = await waitForRun(server, await start('parallel'));
  expect(run.status).toBe('Completed');
  const left = target.to('/left')[0];
  const right = target.to('/right')[0];
  // Both calls were in flight at once: the second started before the first (400 ms) answered.
  expect(Math.abs(left.at - right.at)).toBeLessThan(350);
  expect(step(run, 'join').output.message).toBe('both done: 200 200');
  expect(step(run, 'join').depsRequired).toBe(2);
});

test('a false condition skips the step and still releases its dependents', async () => {
  const run = await waitForRun(server, await start('conditional', { deploy: false }));
  expect(run.status).toBe('Completed');
  expect(step(run, 'maybe').status).toBe('skipped');
  expect(step(run, 'after').output.message).toBe('after: skipped');
  expect(target.to('/deploy')).toHaveLength(0);

  const ran = await waitForRun(server, await start('conditional', { deploy: true }));
  expect(step(ran, 'maybe').status).toBe('completed');
  expect(target.to('/deploy')).toHaveLength(1);
});

test('a failing call is retried with backoff until it succeeds', async () => {
  const run = await waitForRun(server, await start('retrying'));
  expect(run.status).toBe('Completed');
  expect(step(run, 'flaky').attempt).toBe(3);
  const calls = target.to('/flaky');
  expect(calls).toHaveLength(3);
  // Backoff 0.2 s then 0.4 s.
  expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(180);
  expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(380);
});

test('a step slower than its timeout fails the run', async () => {
  const run = await waitForRun(server, await start('slow'));
  expect(run.status).toBe('Failed');
  expect(step(run, 'call').status).toBe('failed');
  expect(run.error).toMatch(/step call failed/);
});

test('onFailure continue lets dependents run; skip_dependents skips every descendant', async () => {
  const run = await waitForRun(server, await start('tolerant'));
  expect(run.engineStatus).toBe('partial');
  expect(step(run, 'optional').status).toBe('failed');
  expect(step(run, 'afterOptional').status).toBe('completed');
  expect(step(run, 'guarded').status).toBe('failed');
  expect(step(run, 'needsGuarded').status).toBe('skipped');
  expect(step(run, 'grandchild').status).toBe('skipped');
});

test('wait_for_event parks the step until the event is delivered through the API', async () => {
  const id = await start('waiter');
  await eventually(async () => {
    const r = await server.call('GET', `/sfp/api/flows/${id}`);
    return r.body.status === 'Waiting' && step(r.body, 'wait')?.status === 'waiting' ? true : undefined;
  });
  const wrong = await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'other' });
  expect(wrong.status).toBe(409);
  expect(wrong.body.error).toMatch(/No step .* waiting for event "other"/);
  const sent = await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go', payload: { value: 'green' } });
  expect(sent.status).toBe(202);
  expect(sent.body).toMatchObject({ runId: id, step: 'wait', delivered: true });
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(step(run, 'done').output.message).toBe('got green');
});

test('a step alone runs in the run workflow, steps side by side in their own; decisions and events find either', async () => {
  const id = await start('gate-and-wait', {});
  const engineRunId = (await server.services.store.findById(id))!.engineRunId;
  const approval = await eventually(async () => (await server.services.orm.em.fork().getConnection()
    .execute<{ id: string }[]>(`select id from approvals where run_id = ? and status = 'pending'`, [id]))[0]?.id);
  await eventually(async () => (await server.services.store.findWaitingStep(id, 'event:go')) ?? undefined);
  const ownerToken = await createToken(server, { name: 'owner', role: 'owner', email: 'owner@acme.io' });
  const decided = await server.call('POST', `/sfp/api/flows/approvals/${approval}/approve`, { approver: 'owner', approverEmail: 'owner@acme.io' }, ownerToken);
  expect(decided.status).toBe(200);
  expect((await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go', payload: { value: 'blue' } })).status).toBe(202);
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(step(run, 'join').output.message).toBe('approved and got blue');
  const hosts = Object.fromEntries((await server.services.store.steps(id)).map((x) => [x.stepRef, x.workflowId]));
  expect(hosts).toEqual({ approve: `${engineRunId}::approve`, wait: `${engineRunId}::wait`, join: engineRunId });
});

test('wait_for_event fails the step when the event does not come in time', async () => {
  const run = await waitForRun(server, await start('waiter', { timeoutSeconds: 1 }));
  expect(run.status).toBe('Failed');
  expect(step(run, 'wait').error).toMatch(/timed out .* waiting for event "go"/);
});

test('an orchestrator starts one child run per item, linked to it, and aggregates them', async () => {
  const id = await start('orchestrator', { items: ['core', 'sales'] });
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(run.children).toHaveLength(2);
  expect(run.childrenStatus).toEqual({ total: 2, byStatus: { Completed: 2 }, status: 'Completed' });
  expect(target.to('/child/core')).toHaveLength(1);
  expect(target.to('/child/sales')).toHaveLength(1);
  const children = await server.call('GET', `/sfp/api/flows/${id}/children`);
  expect(children.body.count).toBe(2);
  expect(children.body.children.every((c: any) => c.parentExecutionId === id)).toBe(true);
  expect(step(run, 'children').output.children.map((c: any) => c.result.name).sort()).toEqual(['core', 'sales']);
});

test('notify steps and the final result are posted to a webhook callback', async () => {
  const hook = new Recorder();
  await hook.start();
  try {
    const id = await start('notifier', { text: 'deploying' }, { type: 'webhook', webhook: { url: `${hook.url}/hook` } });
    await waitForRun(server, id);
    await hook.waitFor((r) => r.length >= 2);
    expect(hook.requests[0].json).toMatchObject({ event: 'run.message', runId: id, message: 'deploying' });
    expect(hook.requests[1].json).toMatchObject({ event: 'run.finished', runId: id, status: 'completed' });
  } finally {
    await hook.stop();
  }
});

test('every step records start, end, output and error; the log is ordered', async () => {
  const id = await start('two-calls', { sleepSeconds: 0.2 });
  const run = await waitForRun(server, id);
  expect(run.result).toEqual({ firstStatus: 200, secondStatus: 200 });
  for (const s of run.steps) {
    expect(s.status).toBe('completed');
    expect(Date.parse(s.finishedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
  }
  expect(target.to('/second').at(-1)!.json).toEqual({ previous: 200 });
  const logs = await server.call('GET', `/sfp/api/flows/${id}/logs`);
  const seqs = logs.body.logs.map((l: any) => l.seq);
  expect(seqs).toEqual([...seqs].sort((a: number, b: number) => a - b));
  expect(seqs[0]).toBe(1);
  expect(logs.body.logs.map((l: any) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^Step first \(http.request\) started/), expect.stringMatching(/POST .*\/first → 200/), 'Run completed']));
});
