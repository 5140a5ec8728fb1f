import { orphanSweep } from '../../src/core/runs/orphan-sweep.js';
import { createProject, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/app');
});
afterAll(async () => { await server?.stop(); });

test('a run recorded but never handed to the engine is failed by the sweep; a started one is left alone', async () => {
  const s = server.services;
  const orphan = await s.runs.prepare({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' });
  orphan.createdAt = new Date(Date.now() - 5 * 60_000);
  await s.store.insert(orphan);
  const young = await s.runs.prepare({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' });
  await s.store.insert(young);
  const started = await s.runs.start({ payload: { id: 'waiter' }, repositoryIdentifier: 'acme/app', triggeredBy: 'x' }, { name: 'x', door: 'rest' });

  await orphanSweep(s.orm, s.store, s.engine).run();
  expect((await s.store.findById(orphan.id))!.status).toBe('failed');
  expect((await s.store.findById(orphan.id))!.error).toMatch(/never started/);
  expect((await s.store.findById(young.id))!.status).toBe('queued');
  expect((await s.store.findById(started.id))!.status).not.toBe('failed');
  await s.runs.cancel((await s.store.findById(started.id))!, { name: 'x', door: 'rest' });
});
