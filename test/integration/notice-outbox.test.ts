import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startRun, startTestServer, type TestServer } from '../support/server.js';

// The notice outbox of Engine v2: what a run's thread hears is written with the change and
// delivered with retries, in order, by whichever process is up.
const FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/control-flows');

let server: TestServer;
let db: pg.Pool;
const thread = new Recorder();
/** `/flaky` answers 503 this many more times. */
let failures = 0;

beforeAll(async () => {
  await thread.start();
  thread.respond((r) => (r.path === '/flaky' && failures-- > 0 ? { status: 503, body: { error: 'down for a moment' } } : undefined));
  thread.respond((r) => (r.path === '/slow' ? { delayMs: 4_000 } : undefined));
  server = await startTestServer({ flows: FLOWS, env: { FLOWGATE_WEBHOOK_SECRET: 'whsec-outbox-0123456789' } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'] });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await thread.stop();
});

const hook = (p: string) => ({ type: 'webhook', webhook: { url: `${thread.url}${p}` } });
const notices = async (runId: string) =>
  (await db.query('select kind, attempts, delivered_at is not null as closed, last_error from notices where run_id = $1 order by id', [runId])).rows;
const told = (p: string, runId: string) => thread.to(p).filter((q) => (q.json as any)?.runId === runId).map((q) => (q.json as any).event);

test('a thread that is down is told once it is back: the notice is retried with backoff, delivered once', async () => {
  failures = 2;
  const id = await startRun(server, 'event-waiter', { target: thread.url }, hook('/flaky'));
  await eventually(async () => ((await server.call('GET', `/v1/workflow-runs/${id}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
  expect(await notices(id)).toEqual([]);
  expect((await server.call('DELETE', `/v1/workflow-runs/${id}`)).status).toBe(204);
  await eventually(async () => ((await notices(id))[0]?.closed ? true : undefined), 20_000, 'run.finished delivered');
  // Two tries answered 503, the third was taken (backoff 1 s, then 2 s); nothing after it.
  expect(told('/flaky', id)).toEqual(['run.finished', 'run.finished', 'run.finished']);
  expect(await notices(id)).toEqual([{ kind: 'run.finished', attempts: 3, closed: true, last_error: null }]);
  await new Promise((r) => setTimeout(r, 1_200));
  expect(told('/flaky', id)).toHaveLength(3);
});

test('a slow thread holds up only its own run: other runs\' notices go out meanwhile, and its own stay in order', async () => {
  const slow = await startRun(server, 'gated', { target: thread.url }, hook('/slow'));
  // Its approval.requested is in flight at the slow thread (answering after 4 s) …
  await eventually(async () => (thread.to('/slow').length === 1 ? true : undefined), 20_000, 'the slow thread asked');
  expect((await server.call('DELETE', `/v1/workflow-runs/${slow}`)).status).toBe(204);
  // … while a run on a quick thread is told everything, start to end.
  const quick = await startRun(server, 'gated', { target: thread.url }, hook('/quick'));
  await eventually(async () => ((await server.call('GET', `/v1/workflow-runs/${quick}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
  expect((await server.call('DELETE', `/v1/workflow-runs/${quick}`)).status).toBe(204);
  await eventually(async () => (told('/quick', quick).length === 3 ? true : undefined), 3_000, 'the quick thread told while the slow one still answers');
  expect(told('/slow', slow)).toEqual(['approval.requested']);
  await eventually(async () => (told('/slow', slow).length === 3 ? true : undefined), 30_000, 'the slow thread told in the end');
  expect(told('/slow', slow)).toEqual(['approval.requested', 'approval.updated', 'run.finished']);
}, 60_000);

test('a run that ends with its approval pending (timed out) closes the approval as stale, audited, and its thread hears so', async () => {
  const id = await startRun(server, 'gated-timeout', {}, hook('/stale'));
  await eventually(async () => (told('/stale', id).includes('run.finished') && told('/stale', id).includes('approval.updated') ? true : undefined), 20_000, 'the end and the closed approval told');
  const [approval] = (await db.query('select id, status from approvals where run_id = $1', [id])).rows;
  expect(approval.status).toBe('stale');
  const updated = thread.to('/stale').map((q) => q.json as any).find((n) => n.event === 'approval.updated' && n.runId === id);
  expect(updated.approval).toMatchObject({ id: approval.id, status: 'stale' });
  expect((await db.query(`select count(*)::int as n from audit_events where target_id = $1 and action = 'approval.stale'`, [approval.id])).rows[0].n).toBe(1);
  expect((await server.call('GET', `/v1/workflow-runs/${id}`)).body.status).toBe('timed_out');
});

test('notices queued while no outbox runs are delivered, in order, once one runs again', async () => {
  await server.services.outbox.stop();
  let id: string;
  try {
    id = await startRun(server, 'gated', { target: thread.url }, hook('/paused'));
    await eventually(async () => ((await server.call('GET', `/v1/workflow-runs/${id}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
    await server.call('DELETE', `/v1/workflow-runs/${id}`);
    await eventually(async () => ((await notices(id)).length === 3 ? true : undefined), 20_000, 'three notices queued');
    expect(thread.to('/paused')).toHaveLength(0);
    expect((await notices(id)).map((n) => [n.kind, n.closed])).toEqual([['approval.requested', false], ['approval.updated', false], ['run.finished', false]]);
  } finally {
    server.services.outbox.start();
  }
  await eventually(async () => (told('/paused', id).length === 3 ? true : undefined), 20_000, 'all three told');
  expect(told('/paused', id)).toEqual(['approval.requested', 'approval.updated', 'run.finished']);
  // Each is read when it is sent: the approval is already cancelled, the run too.
  const [, updated, finished] = thread.to('/paused').map((q) => q.json as any);
  expect(updated.approval.status).toMatch(/cancel/);
  expect(finished).toMatchObject({ status: 'cancelled' });
  // Each delivered on its first try (marked once its answer came back).
  await eventually(async () => ((await notices(id)).every((n) => n.closed) ? true : undefined), 10_000, 'all marked delivered');
  expect((await notices(id)).map((n) => n.attempts)).toEqual([1, 1, 1]);
});

test('a notice the outbound policy refuses is given up at once, said in the run log, and the run\'s next notices go on', async () => {
  // 10.0.0.0/8 is outside FLOWGATE_OUTBOUND_ALLOW: refused before any connection is made.
  const id = await startRun(server, 'gated', { target: thread.url }, { type: 'webhook', webhook: { url: 'http://10.255.255.1/thread' } });
  await eventually(async () => ((await notices(id)).some((n) => n.kind === 'approval.requested' && n.closed) ? true : undefined), 20_000, 'given up');
  const [requested] = await notices(id);
  expect(requested).toMatchObject({ kind: 'approval.requested', attempts: 1, closed: true, last_error: expect.stringMatching(/refused|not allowed|outbound/i) });
  const { rows } = await db.query(`select message from log_lines where run_id = $1 and log_group = 'notify'`, [id]);
  expect(rows.map((r) => r.message)).toEqual([expect.stringMatching(/^approval\.requested not delivered: /)]);
  await server.call('DELETE', `/v1/workflow-runs/${id}`);
  await eventually(async () => ((await notices(id)).length === 3 && (await notices(id)).every((n) => n.closed) ? true : undefined), 20_000, 'the rest closed too');
});

test('a cancel is one transaction: when its last write fails, the run, its steps, its approval and its thread are as before', async () => {
  // A failure injected into the cancel's last write (the run's end notice) of runs told at `/atomic`.
  await db.query(`create or replace function fail_atomic_notice() returns trigger language plpgsql as $$
    begin
      if new.kind = 'run.finished' and exists (select 1 from runs where id = new.run_id and callback->'webhook'->>'url' like '%/atomic') then
        raise exception 'injected failure';
      end if;
      return new;
    end $$`);
  await db.query('create trigger fail_atomic_notice before insert on notices for each row execute function fail_atomic_notice()');
  try {
    const id = await startRun(server, 'gated', { target: thread.url }, hook('/atomic'));
    await eventually(async () => ((await server.call('GET', `/v1/workflow-runs/${id}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
    const before = (await db.query(`select a.status, (select count(*)::int from audit_events e where e.target_id = a.id::text) as audited from approvals a where a.run_id = $1`, [id])).rows;
    expect((await server.call('DELETE', `/v1/workflow-runs/${id}`)).status).toBeGreaterThanOrEqual(500);
    expect((await db.query('select status from runs where id = $1', [id])).rows[0].status).not.toBe('cancelled');
    expect((await db.query(`select status from step_runs where run_id = $1`, [id])).rows.map((r) => r.status)).toEqual(['waiting']);
    expect((await db.query(`select a.status, (select count(*)::int from audit_events e where e.target_id = a.id::text) as audited from approvals a where a.run_id = $1`, [id])).rows).toEqual(before);
    expect((await notices(id)).map((n) => n.kind)).toEqual(['approval.requested']);

    await db.query('drop trigger fail_atomic_notice on notices');
    expect((await server.call('DELETE', `/v1/workflow-runs/${id}`)).status).toBe(204);
    expect((await notices(id)).map((n) => n.kind)).toEqual(['approval.requested', 'approval.updated', 'run.finished']);
    const steps = (await db.query(`select status, attempts from step_runs where run_id = $1`, [id])).rows;
    // The step and its open attempt end together.
    expect(steps).toEqual([{ status: 'cancelled', attempts: [expect.objectContaining({ status: 'cancelled', error: expect.stringMatching(/^cancelled by /) })] }]);
    expect((await db.query(`select status from approvals where run_id = $1`, [id])).rows).toEqual([{ status: 'cancelled' }]);
  } finally {
    await db.query('drop trigger if exists fail_atomic_notice on notices');
    await db.query('drop function if exists fail_atomic_notice()');
  }
});
