import { orphanSweep } from '../../src/core/runs/orphan-sweep.js';
import { Recorder } from '../support/recorder.js';
import { createProject, startTestServer, type TestServer } from '../support/server.js';

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000) {
  for (const until = Date.now() + timeoutMs; !(await check()); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > until) throw new Error('timed out');
  }
}

let server: TestServer;
const ci = new Recorder();
beforeAll(async () => {
  await ci.start();
  ci.respond((r) => ((r.json as { event?: string })?.event === 'cicd.dispatch' ? { body: { cicdRunId: 'ci-orphan' } } : undefined));
  server = await startTestServer({ env: { FLOWGATE_WEBHOOK_SECRET: 'whsec-orphans-0123456789', FLOWGATE_CICD_WEBHOOK_URL: `${ci.url}/dispatch` } });
  await createProject(server, 'acme/app');
});
afterAll(async () => {
  await server?.stop();
  await ci.stop();
});

test('a run committed but never handed to the engine is handed over by the sweep; a young one is left to its launcher', async () => {
  const s = server.services;
  const orphan = await s.runs.prepare({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' });
  orphan.createdAt = new Date(Date.now() - 5 * 60_000);
  await s.store.insert(orphan);
  const young = await s.runs.prepare({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' });
  await s.store.insert(young);
  expect(await s.engine.knows(orphan.engineRunId)).toBe(false);

  await orphanSweep(s.orm, s.launcher, s.engine, s.log).run();
  // The orphan now runs: the waiter flow parks at its event.
  await waitFor(async () => (await s.store.findById(orphan.id))!.status === 'waiting');
  expect(await s.engine.knows(orphan.engineRunId)).toBe(true);
  expect(await s.engine.knows(young.engineRunId)).toBe(false);
  expect((await s.store.findById(young.id))!.status).toBe('queued');

  // A second sweep (or another replica's) does not start it twice.
  await orphanSweep(s.orm, s.launcher, s.engine, s.log).run();
  await new Promise((r) => setTimeout(r, 300));
  const started = (await s.logs.list(orphan.id)).filter((l) => l.message.startsWith('Step wait (wait_for_event) started'));
  expect(started).toHaveLength(1);
  await s.runs.cancel((await s.store.findById(orphan.id))!, { person: { email: 'x' }, door: 'rest' });
});

test('a cicd run committed but never dispatched (its process died in between) is dispatched by the sweep, once', async () => {
  const s = server.services;
  const sweep = () => orphanSweep(s.orm, s.launcher, s.engine, s.log, (id) => s.cicd.dispatchOrphan(id)).run();
  const orphan = await s.runs.prepare({ payload: { id: 'cicd-webhook', commitSha: 'abc123' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' }, { dispatchCicd: true });
  orphan.createdAt = new Date(Date.now() - 5 * 60_000);
  await s.store.insert(orphan);
  expect(await s.engine.knows(orphan.engineRunId)).toBe(false);
  await sweep();
  await waitFor(async () => ci.to('/dispatch').some((r) => (r.json as { executionId?: string }).executionId === orphan.id));
  // Another sweep (or replica) does not dispatch it again.
  await sweep();
  await new Promise((r) => setTimeout(r, 500));
  expect(ci.to('/dispatch').filter((r) => (r.json as { executionId?: string }).executionId === orphan.id)).toHaveLength(1);
});
