import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { FlowLocks } from '../../src/core/locks/flow-locks.js';
import { checkDefinition } from '../../src/core/registry/load-manifests.js';
import { createProject, eventually, startRun, startTestServer, type TestServer, waitForRun } from '../support/server.js';

const FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/lock-flows');

let server: TestServer;
let db: pg.Pool;

beforeAll(async () => {
  // The sweep runs when the test says (its first pass is at start).
  server = await startTestServer({ flows: FLOWS, env: { FLOWGATE_SWEEP_INTERVAL_MS: '3600000' } });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server);
  await createProject(server, 'acme/other');
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const release = async (id: string) => expect((await server.call('POST', `/api/v1/runs/${id}/events`, { event: 'release' })).status).toBe(202);
const runRow = async (id: string) => (await db.query('select * from runs where id = $1', [id])).rows[0];
const stepRow = async (id: string, ref: string) => (await db.query('select * from step_runs where run_id = $1 and step_ref = $2', [id, ref])).rows[0];
const stepReaches = (id: string, ref: string, status: string) =>
  eventually(async () => { const s = await stepRow(id, ref); return s?.status === status ? s : undefined; }, 20_000, `step ${ref} of run ${id} ${status}`);
const holders = async (key: string) => (await db.query('select repository_identifier, run_id from flow_locks where lock_key = $1 order by repository_identifier', [key])).rows;
/** A run of `held` that has taken its lock and holds it until released. */
const holding = async (key: string, more: Record<string, unknown> = {}) => {
  const id = await startRun(server, 'held', { key, ...more });
  await stepReaches(id, 'hold', 'waiting');
  return id;
};

test('a second run for the same key waits on its lock step while the first holds it, and goes on once the first ends (woken by that end)', async () => {
  const key = 'deploy-prod';
  const first = await holding(key);
  const second = await startRun(server, 'held', { key });
  const waiting = await stepReaches(second, 'lock', 'waiting');
  expect(waiting.waiting_for).toBe(`lock:${key}`);
  expect(waiting.output).toMatchObject({ key, holder: first, polls: 1 });
  expect((await runRow(second)).status).toBe('waiting');
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: first }]);

  // Parked with its next poll seconds away: taking the lock before then means the holder's end woke it.
  const parked = await eventually(async () => {
    const r = await runRow(second);
    return r.lease_token === null && r.wake_at.getTime() - Date.now() > 1_500 ? r : undefined;
  }, 20_000, 'the waiter parked until a later poll');
  expect((await stepRow(second, 'lock')).status).toBe('waiting');
  await release(first);
  expect((await waitForRun(server, first)).status).toBe('Completed');
  const lock = await stepReaches(second, 'lock', 'completed');
  expect(lock.finished_at.getTime()).toBeLessThan(parked.wake_at.getTime());

  // Ordering by the steps' own times: nothing of the second ran past its lock before the first ended.
  const firstEnd = (await runRow(first)).finished_at.getTime();
  expect(lock.finished_at.getTime()).toBeGreaterThanOrEqual(firstEnd);
  expect((await stepRow(second, 'hold')).started_at.getTime()).toBeGreaterThanOrEqual((await stepRow(first, 'done')).finished_at.getTime());
  expect(lock.output).toEqual({ key, acquiredAt: expect.any(String), waitedSeconds: expect.any(Number) });
  expect(lock.output.waitedSeconds).toBeGreaterThan(1);
  expect(Date.parse(lock.output.acquiredAt)).toBeGreaterThanOrEqual(firstEnd);
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: second }]);

  await release(second);
  expect((await waitForRun(server, second)).status).toBe('Completed');
  // Released by the run's end itself.
  expect(await holders(key)).toEqual([]);
});

test('other keys and other projects are not held up', async () => {
  const key = 'deploy-staging';
  const holder = await holding(key);
  const otherKey = await holding('deploy-qa');
  const otherProject = await holding(key, { repositoryIdentifier: 'acme/other' });
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: holder }, { repository_identifier: 'acme/other', run_id: otherProject }]);
  for (const id of [holder, otherKey, otherProject]) await release(id);
  for (const id of [holder, otherKey, otherProject]) expect((await waitForRun(server, id)).status).toBe('Completed');
  for (const id of [holder, otherKey, otherProject]) expect((await stepRow(id, 'lock')).output.waitedSeconds).toBeLessThan(1);
});

test('a cancelled holder gives its lock up: the waiting run takes it over', async () => {
  const key = 'deploy-cancelled';
  const holder = await holding(key);
  const waiter = await startRun(server, 'held', { key });
  await stepReaches(waiter, 'lock', 'waiting');
  expect((await server.call('POST', `/sfp/api/flows/${holder}/cancel`)).status).toBe(200);
  expect((await waitForRun(server, holder)).status).toBe('Cancelled');
  await stepReaches(waiter, 'hold', 'waiting');
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: waiter }]);
  await release(waiter);
  expect((await waitForRun(server, waiter)).status).toBe('Completed');
});

test('past waitTimeoutSeconds the waiting step fails, naming the key and the holder; the holder goes on', async () => {
  const key = 'deploy-busy';
  const holder = await holding(key);
  const waiter = await startRun(server, 'held', { key, wait: 2 });
  const run = await waitForRun(server, waiter);
  expect(run.status).toBe('Failed');
  const lock = await stepRow(waiter, 'lock');
  expect(lock.status).toBe('failed');
  expect(lock.error).toBe(`lock "${key}" not acquired within 2s: held by run ${holder}`);
  expect(run.error).toContain(lock.error);
  expect(lock.finished_at.getTime() - lock.started_at.getTime()).toBeGreaterThanOrEqual(1_900);
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: holder }]);
  await release(holder);
  expect((await waitForRun(server, holder)).status).toBe('Completed');
});

test('a run takes a lock it holds already at once (side by side and again later); a child asking for its parent\'s lock fails at once', async () => {
  const key = 'deploy-self';
  const id = await startRun(server, 'reentrant', { key });
  expect((await waitForRun(server, id)).status).toBe('Completed');
  const outs = await Promise.all(['first', 'twin', 'again'].map(async (ref) => (await stepRow(id, ref)).output));
  expect(new Set(outs.map((o) => o.acquiredAt)).size).toBe(1);
  expect(outs.map((o) => o.key)).toEqual([key, key, key]);
  expect(await holders(key)).toEqual([]);

  const parent = await startRun(server, 'nested', { key: 'deploy-nested' });
  expect((await waitForRun(server, parent)).status).toBe('Failed');
  const { rows: [child] } = await db.query('select id from runs where parent_run_id = $1', [parent]);
  expect((await stepRow(child.id, 'lock')).error).toBe(`lock "deploy-nested" is held by run ${parent}, which this run is part of: it would never be released to this run`);
  expect(await holders('deploy-nested')).toEqual([]);
});

test('a key that does not fit is refused naming the field: when rendered, or when the flow is loaded', async () => {
  const run = await waitForRun(server, await startRun(server, 'held', { key: 'k'.repeat(201) }));
  expect(run.status).toBe('Failed');
  expect((await stepRow(run.id, 'lock')).error).toBe('invalid input for flow.lock step: with.key: at most 200 characters');
  const loaded = checkDefinition({ id: 'bad-lock', name: 'Bad lock', steps: [{ ref: 'lock', type: 'flow.lock', with: { key: '' } }] });
  expect(loaded.problems).toEqual([{ path: ['steps', 0, 'with', 'key'], message: 'must not be empty' }]);
});

test('the sweep deletes the locks of runs that ended without releasing them', async () => {
  const key = 'deploy-swept';
  const holder = await holding(key);
  expect((await server.call('POST', `/sfp/api/flows/${holder}/cancel`)).status).toBe(200);
  expect((await waitForRun(server, holder)).status).toBe('Cancelled');
  // A cancel ends the run outside the executor: its row stays until taken over or swept.
  expect(await holders(key)).toHaveLength(1);
  expect(await new FlowLocks(server.services.orm).releaseEnded()).toBeGreaterThanOrEqual(1);
  expect(await holders(key)).toEqual([]);
});

test('a retry of a run that held a lock takes the lock again before the steps after it run', async () => {
  const key = 'deploy-retried';
  const failed = await waitForRun(server, await startRun(server, 'relock', { key }));
  expect(failed.status).toBe('Failed');
  const r = await server.call('POST', `/v1/workflow-runs/${failed.id}/retry`);
  expect(r.status).toBe(201);
  // The retry keeps no completed lock step: its own lock step runs, and the lock is the retry's.
  const lock = await stepReaches(r.body.id, 'lock', 'completed');
  expect(lock.started_at.getTime()).toBeGreaterThan((await runRow(failed.id)).finished_at.getTime());
  expect(await holders(key)).toEqual([{ repository_identifier: 'acme/app', run_id: r.body.id }]);
  expect((await waitForRun(server, r.body.id)).status).toBe('Failed');
});
