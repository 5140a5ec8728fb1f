import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { flushRuns } from '../../src/executor/flush.js';
import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startRun, startTestServer, type TestServer, waitForRun } from '../support/server.js';

const FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/executor-flows');

let server: TestServer;
let db: pg.Pool;
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path.endsWith('/fail') ? { status: 500, body: { error: 'boom' } } : undefined));
  target.respond((r) => (r.path === '/left' || r.path === '/right' ? { delayMs: 300 } : undefined));
  server = await startTestServer({ flows: FLOWS, env: { FLOWGATE_ENGINE: 'v2' } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server);
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await target.stop();
});

const start = (id: string, params: Record<string, unknown> = {}, callback?: unknown) => startRun(server, id, { target: target.url, ...params }, callback);
const step = (run: any, ref: string) => run.steps.find((s: any) => s.ref === ref);
const row = async (id: string) => (await db.query('select * from runs where id = $1', [id])).rows[0];

test('a one-step log run completes on the v2 executor with its lines in order and one audit record', async () => {
  const id = await start('one-log', { text: 'hi' });
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  const r = await row(id);
  expect(r).toMatchObject({ engine_version: 'v2', status: 'completed', wake_at: null, lease_owner: null, lease_token: null });
  const { rows: lines } = await db.query('select seq, message from log_lines where run_id = $1 order by seq', [id]);
  expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
  expect(lines.map((l) => l.message)).toEqual([
    expect.stringMatching(/^Run of one-log started/), 'Step say (log) started', 'said hi', 'Step say completed', 'Run completed',
  ]);
  expect(Number(r.log_seq)).toBe(5);
  const { rows: audit } = await db.query(`select action from audit_events where target_id = $1 and action = 'run.completed'`, [id]);
  expect(audit).toHaveLength(1);
  expect(step(run, 'say')).toMatchObject({ status: 'completed', output: { message: 'said hi', level: 'info' } });
  // No DBOS workflow was started for it.
  expect(r.started_at).not.toBeNull();
});

test('a run started here is committed already leased to this process\'s executor, which works on it without a claim', async () => {
  const id = await start('parallel');
  // Read as soon as the start is answered: no claim could have run yet, the lease came with the insert.
  expect(await row(id)).toMatchObject({ status: 'running', lease_owner: server.services.config.executorId, engine_version: 'v2' });
  expect((await row(id)).started_at).not.toBeNull();
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(await row(id)).toMatchObject({ lease_owner: null, lease_token: null, wake_at: null });
});

test('a DAG runs its independent steps side by side and the join sees both outputs', async () => {
  const run = await waitForRun(server, await start('parallel'));
  expect(run.status).toBe('Completed');
  const left = target.to('/left')[0];
  const right = target.to('/right')[0];
  // Both were in flight at once: the second call started before the first (300 ms) answered.
  expect(Math.abs(left.at - right.at)).toBeLessThan(250);
  expect(step(run, 'left').status).toBe('completed');
  expect(step(run, 'right').status).toBe('completed');
  expect(step(run, 'join')).toMatchObject({ status: 'completed', output: { message: 'both done: 200 200' } });
});

test('each http.request step calls its target exactly once and the outputs render', async () => {
  const run = await waitForRun(server, await start('chain', { target: `${target.url}/once` }));
  expect(run.status).toBe('Completed');
  expect(target.to('/once/first')).toHaveLength(1);
  expect(target.to('/once/second')).toHaveLength(1);
  expect(target.to('/once/second')[0].json).toEqual({ previous: 200 });
  expect((await row(run.id)).result).toEqual({ firstStatus: 200, secondStatus: 200 });
});

test('a failing step fails the run (fail_workflow); continue and skip_dependents are honoured', async () => {
  const failed = await waitForRun(server, await start('failing'));
  expect(failed.status).toBe('Failed');
  expect(step(failed, 'call').status).toBe('failed');
  expect(failed.error).toMatch(/step call failed: HTTP 500/);

  const partial = await waitForRun(server, await start('tolerant'));
  expect(partial.engineStatus).toBe('partial');
  expect(step(partial, 'optional').status).toBe('failed');
  expect(step(partial, 'afterOptional').status).toBe('completed');
  expect(step(partial, 'guarded').status).toBe('failed');
  expect(step(partial, 'needsGuarded').status).toBe('skipped');
  expect(step(partial, 'grandchild').status).toBe('skipped');
});

test('a notify step posts to the webhook callback and the run end is announced', async () => {
  const id = await start('notifier', { text: 'ping' }, { type: 'webhook', webhook: { url: `${target.url}/hook` } });
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(step(run, 'say').output).toMatchObject({ delivered: true, message: 'ping' });
  await target.waitFor((reqs) => reqs.some((r) => r.path === '/hook' && (r.json as any)?.event === 'run.finished' && (r.json as any)?.runId === id));
  expect(target.to('/hook').filter((r) => (r.json as any)?.runId === id).map((r) => (r.json as any).event)).toEqual(['run.message', 'run.finished']);
});

/** A v2 run of `chain` as a dead executor left it: leased to someone else, first step flushed. */
async function abandonedRun(opts: { leaseExpired: boolean; targetPath: string; firstDone: boolean }) {
  const template = await waitForRun(server, await start('chain', { target: `${target.url}/template` }));
  const id = randomUUID();
  const token = randomUUID();
  await db.query(`insert into runs (id, engine_run_id, task_type, flow_path, category, execution_mode, repository_identifier, status, payload, result,
      definition, triggered_by, engine, log_seq, created_at, updated_at, started_at, engine_version, lease_owner, lease_token, wake_at)
    select $1::uuid, 'run-' || $1::text, task_type, flow_path, category, execution_mode, repository_identifier, 'running', jsonb_set(payload, '{target}', to_jsonb($2::text)), '{}',
      definition, triggered_by, engine, 0, now(), now(), now(), 'v2', 'dead-executor', $3, now() + $4::interval
    from runs where id = $5`, [id, `${target.url}${opts.targetPath}`, token, opts.leaseExpired ? '-1 second' : '1 hour', template.id]);
  if (opts.firstDone) {
    await db.query(`insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, output, started_at, finished_at)
      values ($1, $2, 'first', 'http.request', 'completed', 1, 0, 0, '{"status": 200, "body": {"ok": true}}', now(), now())`, [randomUUID(), id]);
  }
  return { id, token };
}

test('a run whose executor died is taken over when its lease expires, without re-running a flushed step', async () => {
  const live = await abandonedRun({ leaseExpired: false, targetPath: '/alive', firstDone: true });
  const dead = await abandonedRun({ leaseExpired: true, targetPath: '/dead', firstDone: true });
  await db.query(`select pg_notify('flowgate_wake', '')`);
  const run = await waitForRun(server, dead.id);
  expect(run.status).toBe('Completed');
  expect(target.to('/dead/first')).toHaveLength(0);
  expect(target.to('/dead/second')).toHaveLength(1);
  expect(target.to('/dead/second')[0].json).toEqual({ previous: 200 });
  expect(await row(dead.id)).toMatchObject({ lease_owner: null, lease_token: null, wake_at: null });

  // A lease that has not expired is left to its holder, although the executor claimed since.
  const after = await waitForRun(server, await start('one-log'));
  expect(after.status).toBe('Completed');
  expect(await row(live.id)).toMatchObject({ status: 'running', lease_owner: 'dead-executor', lease_token: live.token });
  expect(target.to('/alive/second')).toHaveLength(0);
});

test('a flush with a stale lease token writes nothing; the current token writes everything', async () => {
  const held = await abandonedRun({ leaseExpired: false, targetPath: '/fenced', firstDone: false });
  const flush = (token: string) => ({
    id: held.id, token, seenSignal: '0', release: true, wakeAt: null,
    steps: [{ ref: 'first', kind: 'http.request', status: 'completed' as const, attempt: 1, depsRequired: 0, output: { status: 200 }, error: null }],
    lines: [{ level: 'info' as const, source: 'engine', group: 'run', message: 'late line' }],
    end: { status: 'completed' as const, error: null, result: { late: true } },
    audit: { action: 'run.completed' },
  });
  const pool = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 1 });
  try {
    expect([...(await flushRuns(pool, [flush(randomUUID())], 'test')).keys()]).toEqual([]);
    expect(await row(held.id)).toMatchObject({ status: 'running', log_seq: 0, result: {}, lease_token: held.token });
    expect((await db.query('select count(*)::int as n from step_runs where run_id = $1', [held.id])).rows[0].n).toBe(0);
    expect((await db.query('select count(*)::int as n from log_lines where run_id = $1', [held.id])).rows[0].n).toBe(0);
    expect((await db.query('select count(*)::int as n from audit_events where target_id = $1', [held.id])).rows[0].n).toBe(0);

    expect([...(await flushRuns(pool, [flush(held.token)], 'test')).keys()]).toEqual([held.id]);
    expect(await row(held.id)).toMatchObject({ status: 'completed', log_seq: 1, result: { late: true }, lease_token: null, wake_at: null });
    expect((await db.query('select count(*)::int as n from step_runs where run_id = $1', [held.id])).rows[0].n).toBe(1);
    expect((await db.query('select count(*)::int as n from audit_events where target_id = $1', [held.id])).rows[0].n).toBe(1);

    // Ended: the same token is refused now, and the terminal step row is not moved.
    const again = flush(held.token);
    again.steps[0] = { ...again.steps[0], status: 'failed' as never };
    expect([...(await flushRuns(pool, [again], 'test')).keys()]).toEqual([]);
    expect((await db.query('select status from step_runs where run_id = $1', [held.id])).rows[0].status).toBe('completed');
  } finally {
    await pool.end();
  }
});

test('a sleep parks the run (lease released, wake_at at the wake-up time) and it resumes after', async () => {
  const id = await start('napper', { target: `${target.url}/napper` });
  const parked = await eventually(async () => {
    const r = await row(id);
    return r.status === 'waiting' ? r : undefined;
  }, 5_000, 'run parked');
  expect(parked).toMatchObject({ lease_owner: null, lease_token: null });
  expect(parked.wake_at.getTime()).toBeGreaterThan(Date.now());
  const { rows: [nap] } = await db.query(`select status, waiting_for from step_runs where run_id = $1 and step_ref = 'nap'`, [id]);
  expect(nap).toMatchObject({ status: 'waiting', waiting_for: expect.stringMatching(/^time:/) });
  expect(target.to('/napper/after-nap')).toHaveLength(0);

  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(step(run, 'nap').status).toBe('completed');
  expect(target.to('/napper/after-nap')).toHaveLength(1);
  // The step's start was logged once, not again when the run resumed.
  const { rows: lines } = await db.query(`select message from log_lines where run_id = $1 and message like 'Step nap%' order by seq`, [id]);
  expect(lines.map((l) => l.message)).toEqual(['Step nap (sleep) started', 'Step nap completed']);
});

describe('approvals', () => {
  let owner: string;
  beforeAll(async () => {
    await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
    owner = (await server.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: 'owner@acme.io' })).body.token;
  });
  const gated = async (path: string) => {
    const id = await start('gated', { target: `${target.url}${path}` });
    await eventually(async () => ((await row(id)).status === 'suspended' ? true : undefined), 10_000, 'run suspended');
    return id;
  };

  test('an approval suspends the run without a lease; the decision wakes it and it completes', async () => {
    const id = await gated('/approved');
    const r = await row(id);
    expect(r).toMatchObject({ lease_token: null, signal_seq: '0' });
    const { rows: [a] } = await db.query('select id, expires_at from approvals where run_id = $1', [id]);
    // Its timer is the approval's expiry.
    expect(r.wake_at.getTime()).toBe(a.expires_at.getTime());

    const decided = await server.call('POST', `/sfp/api/flows/approvals/${a.id}/approve`, { approver: 'owner', approverEmail: 'owner@acme.io' }, owner);
    expect(decided.status).toBe(200);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Completed');
    expect(step(run, 'approve').output).toMatchObject({ approvalId: a.id, approvedBy: ['owner@acme.io'] });
    expect(target.to('/approved/after')).toHaveLength(1);
    expect(target.to('/approved/after')[0].json).toEqual({ approvedBy: ['owner@acme.io'] });
  });

  test('a rejection fails the run and the gated call never happens', async () => {
    const id = await gated('/rejected');
    const rejected = await server.call('POST', `/sfp/api/flows/approvals/${id}/reject`, { rejector: 'owner', rejectorEmail: 'owner@acme.io', reason: 'no' }, owner);
    expect(rejected.status).toBe(200);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/approval rejected by owner@acme.io: no/);
    expect(target.to('/rejected/after')).toHaveLength(0);
  });
});

test('cancelling a parked v2 run makes it unclaimable; its sleep never resumes', async () => {
  const id = await start('sleeper', { target: `${target.url}/sleeper` });
  await eventually(async () => ((await row(id)).status === 'waiting' ? true : undefined), 5_000, 'run parked');
  const r = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
  expect(r.status).toBe(200);
  expect(r.body.status).toBe('Cancelled');
  expect(await row(id)).toMatchObject({ status: 'cancelled', wake_at: null });
  const { rows: [nap] } = await db.query(`select status from step_runs where run_id = $1 and step_ref = 'nap'`, [id]);
  expect(nap.status).toBe('cancelled');
});

test('cancelling a v2 run mid-step: the executor drops its late work (the fence refuses it)', async () => {
  target.respond((q) => (q.path === '/midway/first' ? { delayMs: 600 } : undefined));
  const id = await start('chain', { target: `${target.url}/midway` });
  await target.waitFor((reqs) => reqs.some((q) => q.path === '/midway/first'));
  expect(server.services.executor!.holds(id)).toBe(true);
  const r = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
  expect(r.status).toBe(200);
  // The executor lets go of the run once its write is refused.
  await eventually(async () => (server.services.executor!.holds(id) ? undefined : true), 10_000, 'executor dropped the run');
  expect(target.to('/midway/second')).toHaveLength(0);
  expect(await row(id)).toMatchObject({ status: 'cancelled' });
  const { rows } = await db.query(`select step_ref, status from step_runs where run_id = $1`, [id]);
  expect(rows.filter((s) => s.status === 'completed')).toEqual([]);
});

test('the orphan sweep leaves a queued v2 run to the executor (never hands it to DBOS)', async () => {
  const waiting = await abandonedRun({ leaseExpired: false, targetPath: '/orphan', firstDone: false });
  await db.query(`update runs set status = 'queued', lease_owner = null, lease_token = null, created_at = now() - interval '1 minute' where id = $1`, [waiting.id]);
  const { orphanSweep } = await import('../../src/core/runs/orphan-sweep.js');
  const s = server.services;
  await orphanSweep(s.orm, s.launcher, s.engine, s.log).run();
  expect(s.launcher.holds(waiting.id)).toBe(false);
  expect(await s.engine.knows(`run-${waiting.id}`)).toBe(false);
});

describe('events, child flows and cancel with compensation', () => {
  const event = (id: string, body: Record<string, unknown>) => server.call('POST', `/api/v1/runs/${id}/events`, body);
  const stepRow = async (id: string, ref: string) => (await db.query('select status, waiting_for, error, attempt from step_runs where run_id = $1 and step_ref = $2', [id, ref])).rows[0];
  const childRows = async (id: string) => (await db.query('select id, status, engine_version, task_type from runs where parent_run_id = $1 order by id', [id])).rows;

  test('wait_for_event parks the run; a delivered event is recorded once per idempotency key, wakes it, and is the step output', async () => {
    const id = await start('event-waiter', { target: `${target.url}/ev` });
    const parked = await eventually(async () => ((await stepRow(id, 'wait'))?.status === 'waiting' ? row(id) : undefined), 10_000, 'step waiting');
    expect(parked).toMatchObject({ status: 'waiting', lease_token: null });
    // Its timer is the event's timeout (300 s).
    expect(parked.wake_at.getTime()).toBeGreaterThan(Date.now() + 200_000);
    expect(await stepRow(id, 'wait')).toMatchObject({ waiting_for: 'event:go' });

    const first = await event(id, { event: 'go', payload: { n: 1 }, idempotencyKey: 'k1' });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ step: 'wait', duplicate: false });
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Completed');
    expect(step(run, 'wait')).toMatchObject({ status: 'completed', output: { n: 1 } });
    expect(target.to('/ev/after-event')).toHaveLength(1);
    expect(target.to('/ev/after-event')[0].json).toEqual({ got: { n: 1 } });
    const { rows: events } = await db.query('select consumed_by from run_events where run_id = $1', [id]);
    expect(events).toEqual([{ consumed_by: 'wait' }]);
    // A retried delivery is answered as before, even once the run has ended; a new event is refused.
    const again = await event(id, { event: 'go', payload: { n: 2 }, idempotencyKey: 'k1' });
    expect(again.status).toBe(202);
    expect(again.body.duplicate).toBe(true);
    const late = await event(id, { event: 'go', payload: {} });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatch(/has ended/);
  });

  test('an event that arrives before its step waits is kept and taken when the step runs', async () => {
    target.respond((q) => (q.path === '/early/slow' ? { delayMs: 500 } : undefined));
    const id = await start('late-waiter', { target: `${target.url}/early` });
    await target.waitFor((reqs) => reqs.some((q) => q.path === '/early/slow'));
    const sent = await event(id, { event: 'ready', payload: { early: true }, idempotencyKey: 'e1' });
    expect(sent.status).toBe(202);
    expect(sent.body.step).toBeNull();
    // The same delivery retried while the step still does not wait: one row.
    const retried = await event(id, { event: 'ready', payload: { early: 'again' }, idempotencyKey: 'e1' });
    expect(retried.body.duplicate).toBe(true);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Completed');
    expect(step(run, 'wait').output).toEqual({ early: true });
    expect((await db.query('select count(*)::int as n from run_events where run_id = $1', [id])).rows[0].n).toBe(1);
  });

  test('a wait_for_event that times out fails the step and the run', async () => {
    const run = await waitForRun(server, await start('event-waiter', { target: `${target.url}/evt`, timeoutSeconds: 1 }));
    expect(run.status).toBe('Failed');
    expect(step(run, 'wait').status).toBe('failed');
    expect(run.error).toMatch(/timed out after 1s waiting for event "go"/);
    expect(target.to('/evt/after-event')).toHaveLength(0);
  });

  test('a flow step runs its child as a v2 run and takes its result', async () => {
    const id = await start('parent', { target: `${target.url}/fam` });
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Completed');
    const children = await childRows(id);
    expect(children).toEqual([expect.objectContaining({ status: 'completed', engine_version: 'v2', task_type: 'child-call' })]);
    expect(step(run, 'child')).toMatchObject({ status: 'completed', output: { runId: children[0].id, tag: 'solo', status: 200 } });
    expect(target.to('/fam/child')).toHaveLength(1);
    expect(target.to('/fam/after-child')[0].json).toEqual({ tag: 'solo' });
  });

  test('forEach starts one child per item and the output lists them all', async () => {
    const id = await start('fan-out', { target: `${target.url}/fan` });
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Completed');
    const out = step(run, 'each').output;
    expect(out.children.map((c: any) => [c.item, c.status, c.result.tag])).toEqual([['a', 'completed', 'a'], ['b', 'completed', 'b'], ['c', 'completed', 'c']]);
    expect(await childRows(id)).toHaveLength(3);
    expect(target.to('/fan/child').map((r) => (r.json as any).tag).sort()).toEqual(['a', 'b', 'c']);
  });

  test('a failed child fails the flow step', async () => {
    const run = await waitForRun(server, await start('parent', { target: `${target.url}/bad`, path: 'fail' }));
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/child run \S+ \(child-call\) ended failed/);
    expect(target.to('/bad/after-child')).toHaveLength(0);
  });

  const childParked = async (id: string) => eventually(async () => {
    const [c] = await childRows(id);
    return c?.status === 'waiting' ? c : undefined;
  }, 10_000, 'child parked');

  test('a sibling failure (fail_workflow) cancels the running child run', async () => {
    const id = await start('parent-fails', { target: `${target.url}/sib` });
    const child = await childParked(id);
    expect((await event(id, { event: 'break' })).status).toBe(202);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect(step(run, 'child').status).toBe('cancelled');
    expect(await row(child.id)).toMatchObject({ status: 'cancelled', wake_at: null });
    expect((await stepRow(child.id, 'nap')).status).toBe('cancelled');
  });

  test('cancelling a parent cancels its unfinished child run', async () => {
    const id = await start('parent-fails', { target: `${target.url}/cxl` });
    const child = await childParked(id);
    const r = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
    expect(r.status).toBe(200);
    expect(r.body.cancelledExecutionIds).toEqual(expect.arrayContaining([id, child.id]));
    expect(await row(id)).toMatchObject({ status: 'cancelled' });
    expect(await row(child.id)).toMatchObject({ status: 'cancelled', wake_at: null });
  });

  test('cancel during the hold runs the compensation: /revoke is called once and the run ends cancelled', async () => {
    const id = await start('elevated', { target: `${target.url}/elev` });
    await eventually(async () => ((await stepRow(id, 'hold'))?.status === 'waiting' ? true : undefined), 10_000, 'holding');
    expect(target.to('/elev/grant')).toHaveLength(1);
    const r = await server.call('POST', `/sfp/api/flows/${id}/cancel`);
    expect(r.status).toBe(200);
    const ended = await eventually(async () => {
      const x = await row(id);
      return x.status === 'cancelled' ? x : undefined;
    }, 10_000, 'run cancelled');
    expect(ended).toMatchObject({ wake_at: null, lease_token: null, error: expect.stringMatching(/^cancelled by /) });
    expect(target.to('/elev/revoke')).toHaveLength(1);
    expect(await stepRow(id, 'grant')).toMatchObject({ status: 'completed' });
    expect(await stepRow(id, 'hold')).toMatchObject({ status: 'cancelled' });
    expect(await stepRow(id, 'revoke')).toMatchObject({ status: 'cancelled' });
    expect(await stepRow(id, 'revoke-on-failure')).toMatchObject({ status: 'completed' });
    const { rows: audit } = await db.query(`select action from audit_events where target_id = $1 and action like 'run.%' order by at`, [id]);
    expect(audit.map((a) => a.action)).toEqual(['run.started', 'run.cancel_requested', 'run.cancelled']);
  });

  test('cancel while grant is in flight: grant finishes, then the compensation runs once and the run ends cancelled', async () => {
    target.respond((q) => (q.path === '/busy/grant' ? { delayMs: 600 } : undefined));
    const id = await start('elevated', { target: `${target.url}/busy` });
    await target.waitFor((reqs) => reqs.some((q) => q.path === '/busy/grant'));
    expect(server.services.executor!.holds(id)).toBe(true);
    expect((await server.call('POST', `/sfp/api/flows/${id}/cancel`)).status).toBe(200);
    const ended = await eventually(async () => {
      const x = await row(id);
      return x.status === 'cancelled' ? x : undefined;
    }, 10_000, 'run cancelled');
    expect(ended.error).toMatch(/^cancelled by /);
    expect(target.to('/busy/grant')).toHaveLength(1);
    expect(target.to('/busy/revoke')).toHaveLength(1);
    expect(await stepRow(id, 'grant')).toMatchObject({ status: 'completed' });
    expect(['cancelled', undefined]).toContain((await stepRow(id, 'hold'))?.status);
    expect(await stepRow(id, 'revoke-on-failure')).toMatchObject({ status: 'completed' });
  });

  test('a run that would complete after its cancel was requested compensates and ends cancelled instead', async () => {
    target.respond((q) => (q.path === '/last/grant' ? { delayMs: 600 } : undefined));
    const id = await start('grant-only', { target: `${target.url}/last` });
    await target.waitFor((reqs) => reqs.some((q) => q.path === '/last/grant'));
    expect((await server.call('POST', `/sfp/api/flows/${id}/cancel`)).status).toBe(200);
    const ended = await eventually(async () => {
      const x = await row(id);
      return x.status === 'cancelled' ? x : undefined;
    }, 10_000, 'run cancelled');
    expect(ended).toMatchObject({ finished_at: expect.any(Date), lease_token: null });
    expect(await stepRow(id, 'grant')).toMatchObject({ status: 'completed' });
    expect(target.to('/last/revoke')).toHaveLength(1);
    // Who asked, then the end: the completion that was deferred is never recorded.
    const { rows: audit } = await db.query(`select action, actor from audit_events where target_id = $1 and action in ('run.completed', 'run.cancelled', 'run.cancel_requested') order by at`, [id]);
    expect(audit).toEqual([{ action: 'run.cancel_requested', actor: expect.any(String) }, { action: 'run.cancelled', actor: 'system' }]);
  });

  test('cancelling a child run on its own wakes its parent, whose flow step fails', async () => {
    const id = await start('parent-fails', { target: `${target.url}/own` });
    const child = await childParked(id);
    expect((await server.call('POST', `/sfp/api/flows/${child.id}/cancel`)).status).toBe(200);
    await eventually(async () => ((await stepRow(id, 'child'))?.status === 'failed' ? true : undefined), 10_000, 'flow step failed');
    expect((await stepRow(id, 'child')).error).toMatch(/ended cancelled/);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
  });

  test('a re-claimed cancelled run still compensates a step interrupted on an earlier claim', async () => {
    // A run of the flow to copy the definition from; how it ends does not matter.
    const template = await waitForRun(server, await start('elevated', { target: `${target.url}/tmpl`, durationMinutes: 0 }));
    const id = randomUUID();
    // As a dead executor left it: the cancel was applied, grant (onFailure: compensate) interrupted, lease expired.
    await db.query(`insert into runs (id, engine_run_id, task_type, flow_path, category, execution_mode, repository_identifier, status, payload, result,
        definition, triggered_by, engine, log_seq, created_at, updated_at, started_at, engine_version, lease_owner, lease_token, wake_at, cancel_requested)
      select $1::uuid, 'run-' || $1::text, task_type, flow_path, category, execution_mode, repository_identifier, 'running', jsonb_set(payload, '{target}', to_jsonb($2::text)), '{}',
        definition, triggered_by, engine, 0, now(), now(), now(), 'v2', 'dead-executor', gen_random_uuid(), now() - interval '1 second', 'cancelled by someone'
      from runs where id = $3`, [id, `${target.url}/interrupted`, template.id]);
    await db.query(`insert into step_runs (id, run_id, step_ref, kind, status, attempt, deps_completed, deps_required, error, started_at, finished_at)
      values ($1, $2, 'grant', 'http.request', 'cancelled', 1, 0, 0, 'cancelled: cancelled by someone', now(), now())`, [randomUUID(), id]);
    await db.query(`select pg_notify('flowgate_wake', '')`);
    const ended = await eventually(async () => {
      const x = await row(id);
      return x.status === 'cancelled' ? x : undefined;
    }, 10_000, 'run cancelled');
    expect(ended.error).toMatch(/^cancelled by someone/);
    expect(target.to('/interrupted/grant')).toHaveLength(0);
    expect(target.to('/interrupted/revoke')).toHaveLength(1);
    expect(await stepRow(id, 'revoke-on-failure')).toMatchObject({ status: 'completed' });
  });
});
