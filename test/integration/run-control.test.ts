import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startRun, startTestServer, type TestServer } from '../support/server.js';

// Run control over the workflow-runs API, on Engine v2, against the real server.
const FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/control-flows');
const WR = '/v1/workflow-runs';

let server: TestServer;
let db: pg.Pool;
const target = new Recorder();
const t: Record<string, string> = {};
/** What the target answers: `/b` fails while `failB`; `/flaky` fails while `flaky` > 0 (counting down); `/slow` takes `slowMs`. */
const behaviour = { failB: false, flaky: 0, slowMs: 0 };

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path === '/b' ? (behaviour.failB ? { status: 500, body: { error: 'b is down' } } : { body: { n: target.to('/b').length } }) : undefined));
  target.respond((r) => (r.path === '/flaky' && behaviour.flaky-- > 0 ? { status: 503, body: { error: 'busy' } } : undefined));
  target.respond((r) => (r.path === '/slow' ? { delayMs: behaviour.slowMs } : undefined));
  server = await startTestServer({ flows: FLOWS, env: { FLOWGATE_ENGINE: 'v2' } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  await createProject(server, 'acme/other', { owners: ['owner@acme.io'] });
  t.owner = await createToken(server, { name: 'owner', role: 'owner', email: 'owner@acme.io' });
  t.dev = await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io' });
  t.outsider = await createToken(server, { name: 'outsider', role: 'member', email: 'outsider@acme.io' });
  t.viewer = await createToken(server, { name: 'dashboard', role: 'viewer', projects: ['acme/app'] });
  t.other = await createToken(server, { name: 'other', role: 'member', email: 'owner@acme.io', projects: ['acme/other'] });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await target.stop();
});
beforeEach(() => Object.assign(behaviour, { failB: false, flaky: 0, slowMs: 0 }));

const start = (flow: string) => startRun(server, flow, { target: target.url });
const get = async (id: string) => (await server.call('GET', `${WR}/${id}`)).body;
const steps = async (id: string) => (await server.call('GET', `${WR}/${id}/steps`)).body as any[];
const stepOf = async (id: string, ref: string) => (await steps(id)).find((s) => s.step_ref === ref);
const until = (id: string, status: string) => eventually(async () => ((await get(id)).status === status ? get(id) : undefined), 20_000, `run ${status}`);
const stepUntil = (id: string, ref: string, status: string) =>
  eventually(async () => ((await stepOf(id, ref))?.status === status ? stepOf(id, ref) : undefined), 20_000, `step ${ref} ${status}`);
const post = (p: string, body?: unknown, token: string = t.owner) => server.call('POST', `${WR}${p}`, body, token);
const expectError = (r: { status: number; body: any }, status: number, code: string, message?: RegExp) => {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
  if (message) expect(r.body.error.message).toMatch(message);
};
const calls = (p: string, runId: string) => target.to(p).filter((r) => r.headers['x-flowgate-run-id'] === runId || JSON.stringify(r.body ?? '').includes(runId)).length;
const lines = async (id: string) => (await db.query('select message from log_lines where run_id = $1 order by seq', [id])).rows.map((r) => r.message as string);
const audits = async (id: string, action: string) => (await db.query('select actor, details from audit_events where target_id = $1 and action = $2', [id, action])).rows;

describe('pause and resume', () => {
  test('a pause lets the running step finish and starts nothing new until resume', async () => {
    behaviour.slowMs = 2_000;
    const id = await start('slow-then-log');
    await eventually(async () => (target.to('/slow').length > 0 ? true : undefined));
    const before = target.to('/slow').length;
    const paused = await post(`/${id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id, status: 'paused' });
    // The call in flight completes and is recorded; the next step does not start.
    await stepUntil(id, 'slow', 'completed');
    await new Promise((r) => setTimeout(r, 600));
    expect(await stepOf(id, 'next')).toBeUndefined();
    expect((await get(id)).status).toBe('paused');
    expect(target.to('/slow').length).toBe(before);
    // Pausing again is a no-op; resuming runs the rest.
    expect((await post(`/${id}/pause`)).body.status).toBe('paused');
    const resumed = await post(`/${id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('running');
    await until(id, 'completed');
    expect(await lines(id)).toEqual(expect.arrayContaining([expect.stringMatching(/^Run paused by owner@acme\.io/), 'Run resumed by owner@acme.io', 'after the slow call']));
    expect(await audits(id, 'run.paused')).toEqual([expect.objectContaining({ actor: 'owner@acme.io' })]);
    expect(await audits(id, 'run.resumed')).toHaveLength(1);
  });

  test('a paused run parked on an approval stays paused when the approval is decided, and goes on after resume', async () => {
    const id = await start('gated');
    await stepUntil(id, 'approve', 'waiting');
    expect((await post(`/${id}/pause`)).body.status).toBe('paused');
    const approved = await post(`/${id}/steps/approve/approve`, undefined, t.owner);
    expect(approved.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect((await get(id)).status).toBe('paused');
    expect(target.to('/after').filter((r) => JSON.stringify(r.body).includes('owner@acme.io'))).toHaveLength(0);
    await post(`/${id}/resume`);
    await until(id, 'completed');
    expect(await stepOf(id, 'call')).toMatchObject({ status: 'completed' });
  });

  test('pause and resume refuse what the states do not allow, and who may not', async () => {
    const id = await start('event-waiter');
    await stepUntil(id, 'wait', 'waiting');
    expectError(await post(`/${id}/resume`), 400, 'bad_request', /only a paused run can be resumed/);
    expectError(await post(`/${id}/pause`, undefined, t.viewer), 403, 'forbidden');
    expectError(await post(`/${id}/pause`, undefined, t.outsider), 403, 'forbidden', /may not pause/);
    expectError(await post(`/${id}/pause`, undefined, t.other), 404, 'not_found');
    expectError(await post(`/nope/pause`), 404, 'not_found');
    expect((await server.call('DELETE', `${WR}/${id}`, undefined, t.owner)).status).toBe(204);
    await until(id, 'canceled');
    expectError(await post(`/${id}/pause`), 400, 'bad_request', /already ended/);
  });
});

describe('skip and force-complete', () => {
  test('skipping a waiting event step records the reason and releases its dependent', async () => {
    const id = await start('event-waiter');
    await stepUntil(id, 'wait', 'waiting');
    const r = await post(`/${id}/steps/wait/skip`, { reason: 'deploy already confirmed by phone' }, t.dev);
    expect(r.status).toBe(200);
    expect(r.body.step_run).toMatchObject({ step_ref: 'wait', status: 'skipped', error: 'deploy already confirmed by phone' });
    await until(id, 'completed');
    expect(await stepOf(id, 'after')).toMatchObject({ status: 'completed' });
    expect(await audits(id, 'step.skipped')).toEqual([expect.objectContaining({ actor: 'dev@acme.io', details: { step: 'wait', reason: 'deploy already confirmed by phone' } })]);
  });

  test('a pending step can be skipped, and a waiting one force-completed with its result as output', async () => {
    const id = await start('event-waiter');
    await stepUntil(id, 'wait', 'waiting');
    const skipped = await post(`/${id}/steps/after/skip`, {});
    expect(skipped.body.step_run).toMatchObject({ step_ref: 'after', status: 'skipped', error: 'skipped by owner@acme.io' });
    const forced = await post(`/${id}/steps/wait/force-complete`, { result: { confirmed: true } });
    expect(forced.status).toBe(200);
    expect(forced.body.step_run).toMatchObject({ status: 'completed', output: { confirmed: true } });
    await until(id, 'completed');
    // The skipped step never ran.
    expect(target.to('/after-event').filter((q) => JSON.stringify(q.body).includes('confirmed'))).toHaveLength(0);
    expect(await stepOf(id, 'after')).toMatchObject({ status: 'skipped' });
  });

  test('a step control on a run an executor is working on waits for its running step, then applies', async () => {
    behaviour.slowMs = 1_500;
    const id = await start('slow-then-log');
    await eventually(async () => (target.to('/slow').length > 0 && (await get(id)).status === 'running' ? true : undefined));
    const r = await post(`/${id}/steps/next/skip`, { reason: 'not needed' });
    expect(r.status).toBe(200);
    expect(r.body.step_run).toMatchObject({ step_ref: 'next', status: 'skipped', error: 'not needed' });
    await until(id, 'completed');
    // The step in flight was not lost or run twice; the skipped one never ran.
    expect(await stepOf(id, 'slow')).toMatchObject({ status: 'completed', attempt: 1 });
    expect(await lines(id)).not.toContain('after the slow call');
  });

  test('skipping an approval rejects it with the reason and skips what it gates', async () => {
    const calledBefore = target.to('/after').length;
    const id = await start('gated');
    await stepUntil(id, 'approve', 'waiting');
    const r = await post(`/${id}/steps/approve/skip`, { reason: 'change freeze' }, t.dev);
    expect(r.body.step_run).toMatchObject({ status: 'skipped', error: 'change freeze' });
    const run = await until(id, 'completed');
    expect(run.status).toBe('completed');
    expect(await stepOf(id, 'call')).toMatchObject({ status: 'skipped', error: expect.stringContaining('approve') });
    expect(target.to('/after').length).toBe(calledBefore);
    const { rows } = await db.query('select status, reason, resolved_by from approvals where run_id = $1', [id]);
    expect(rows).toEqual([{ status: 'rejected', reason: 'change freeze', resolved_by: 'dev@acme.io' }]);
  });

  test('an approval cannot be force-completed; steps that ran cannot be skipped; bad bodies and refs are named', async () => {
    const id = await start('gated');
    await stepUntil(id, 'approve', 'waiting');
    expectError(await post(`/${id}/steps/approve/force-complete`, {}), 400, 'bad_request', /approval/);
    const bad = await post(`/${id}/steps/call/force-complete`, { result: 'done' });
    expectError(bad, 422, 'validation_failed');
    expect(bad.body.error.details).toEqual([expect.objectContaining({ field: 'result' })]);
    expectError(await post(`/${id}/steps/nope/skip`, {}), 404, 'not_found', /Step nope/);
    expectError(await post(`/${id}/steps/approve/skip`, {}, t.viewer), 403, 'forbidden');
    await post(`/${id}/steps/approve/approve`, undefined, t.owner);
    await until(id, 'completed');
    expectError(await post(`/${id}/steps/call/skip`, {}), 400, 'bad_request', /already ended|cannot skip step in completed status/);
    const other = await start('event-waiter');
    await stepUntil(other, 'wait', 'waiting');
    await post(`/${other}/steps/wait/force-complete`, {});
    await until(other, 'completed');
    expectError(await post(`/${other}/steps/wait/skip`, {}), 400, 'bad_request');
  });
});

describe('retry and replay', () => {
  async function failedAtB() {
    behaviour.failB = true;
    const id = await start('three-calls');
    await until(id, 'failed');
    behaviour.failB = false;
    return id;
  }

  test('retrying the failed step reopens the run, keeps the attempt count and runs what depended on it', async () => {
    const id = await failedAtB();
    expect(await stepOf(id, 'c')).toMatchObject({ status: expect.stringMatching(/canceled|skipped/) });
    const r = await post(`/${id}/steps/b/retry`);
    expect(r.status).toBe(200);
    expect(r.body.step_run).toMatchObject({ step_ref: 'b', status: 'pending', error: null, output: null, started_at: null, finished_at: null });
    const run = await until(id, 'completed');
    expect(run.finished_at).not.toBeNull();
    expect(await stepOf(id, 'b')).toMatchObject({ status: 'completed', attempt: 2 });
    expect(await stepOf(id, 'c')).toMatchObject({ status: 'completed' });
    // a ran once: its outcome was kept.
    expect(calls('/a', id)).toBe(1);
    const { rows } = await db.query(`select attempts from step_runs where run_id = $1 and step_ref = 'b'`, [id]);
    expect(rows[0].attempts.map((a: any) => [a.attempt, a.status])).toEqual([[1, 'failed'], [2, 'completed']]);
    expectError(await post(`/${id}/steps/nope/retry`), 404, 'not_found');
  });

  test('a step that has not ended cannot be retried', async () => {
    const id = await start('event-waiter');
    await stepUntil(id, 'wait', 'waiting');
    expectError(await post(`/${id}/steps/wait/retry`), 400, 'bad_request', /cannot retry step in waiting status/);
    expectError(await post(`/${id}/steps/after/retry`), 400, 'bad_request', /cannot retry step in pending status/);
  });

  test('a run retry is a new run that keeps the completed steps and their outputs', async () => {
    const id = await failedAtB();
    const aCalls = target.to('/a').length;
    const r = await post(`/${id}/retry`, undefined, t.dev);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ retry_of_run_id: id, triggered_by: 'retry', workflow_id: 'three-calls', project_id: 'acme/app', created_by: 'dev@acme.io' });
    expect(r.body.id).not.toBe(id);
    await until(r.body.id, 'completed');
    expect(target.to('/a').length).toBe(aCalls);
    expect(await stepOf(r.body.id, 'a')).toMatchObject({ status: 'completed', output: (await stepOf(id, 'a')).output });
    expect(await stepOf(r.body.id, 'c')).toMatchObject({ status: 'completed' });
    // The original is unchanged.
    expect((await get(id)).status).toBe('failed');
    expectError(await post(`/${r.body.id}/retry`, undefined, t.viewer), 403, 'forbidden');
  });

  test('only an ended run can be retried; bulk-replay reports each run', async () => {
    const failed = await failedAtB();
    const live = await start('event-waiter');
    await stepUntil(live, 'wait', 'waiting');
    expectError(await post(`/${live}/retry`), 400, 'bad_request', /only an ended run/);
    const r = await post('/bulk-replay', { workflow_run_ids: [failed, live, 'missing'] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ replayed: 1, failed: 2 });
    expect(r.body.results).toEqual([
      { original_run_id: failed, new_run_id: expect.any(String), status: 'replayed', error: null },
      { original_run_id: live, new_run_id: null, status: 'failed', error: expect.stringMatching(/only an ended run/) },
      { original_run_id: 'missing', new_run_id: null, status: 'failed', error: expect.stringMatching(/not found/) },
    ]);
    await until(r.body.results[0].new_run_id, 'completed');
    const bad = await post('/bulk-replay', { workflow_run_ids: [] });
    expectError(bad, 422, 'validation_failed');
    expect(bad.body.error.details).toEqual([expect.objectContaining({ field: 'workflow_run_ids' })]);
    await server.call('DELETE', `${WR}/${live}`);
  });

  test('replay-subtree runs a step and its descendants again, only on a paused or ended run, checked before any change', async () => {
    const live = await start('event-waiter');
    await stepUntil(live, 'wait', 'waiting');
    expectError(await post(`/${live}/steps/wait/replay-subtree`), 409, 'conflict', /pause it first/);
    expect(await stepOf(live, 'wait')).toMatchObject({ status: 'waiting' });
    await server.call('DELETE', `${WR}/${live}`);

    const id = await start('three-calls');
    await until(id, 'completed');
    const bBefore = target.to('/b').length;
    const r = await post(`/${id}/steps/b/replay-subtree`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ reset_steps: 2 });
    await until(id, 'completed');
    expect(target.to('/b').length).toBe(bBefore + 1);
    expect(calls('/a', id)).toBe(1);
    expect(await stepOf(id, 'c')).toMatchObject({ status: 'completed' });
    expectError(await post(`/${id}/steps/nope/replay-subtree`), 404, 'not_found');
  });
});

describe('time limits and attempts', () => {
  test('a run past its timeout ends timed_out: its waits are cancelled and what it granted is compensated', async () => {
    const id = await start('timed');
    const run = await until(id, 'timed_out');
    expect(run.error).toMatch(/timed out/);
    expect(run.expires_at).not.toBeNull();
    expect(await stepOf(id, 'hold')).toMatchObject({ status: 'canceled' });
    expect(await stepOf(id, 'revoke')).toMatchObject({ status: 'completed' });
    expect(calls('/revoke', id)).toBe(1);
    expect(await audits(id, 'run.timed_out')).toHaveLength(1);
  });

  test('each attempt of a retried step is kept', async () => {
    behaviour.flaky = 1;
    const id = await start('retried');
    await until(id, 'completed');
    const { rows } = await db.query(`select attempt, attempts from step_runs where run_id = $1`, [id]);
    expect(rows[0].attempt).toBe(2);
    expect(rows[0].attempts).toEqual([
      expect.objectContaining({ attempt: 1, status: 'failed', error: expect.stringContaining('503'), finishedAt: expect.any(String) }),
      expect.objectContaining({ attempt: 2, status: 'completed', error: null }),
    ]);
  });
});
