import { Recorder } from '../support/recorder.js';
import { createProject, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// With FLOWGATE_ACTIVE_RUNS=1 a burst of starts is answered at once and worked through one run
// at a time, in arrival order; the runs waiting for their slot show as `queued` and in /metrics.
let server: TestServer;
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  target.respond((r) => (r.path === '/left' || r.path === '/right' ? { delayMs: 1500 } : undefined));
  // The launcher queues runs for the previous engine's workflows (Engine v2 claims committed runs instead).
  server = await startTestServer({ env: { FLOWGATE_ACTIVE_RUNS: '1', FLOWGATE_ENGINE: 'dbos' } });
  await createProject(server);
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

test('a burst waits queued for its slot and runs in arrival order', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'parallel', repositoryIdentifier: 'acme/app', target: target.url } });
    expect(r.status).toBe(201);
    ids.push(r.body.id);
  }
  const statuses = await Promise.all(ids.map(async (id) => (await server.services.store.findById(id))!.status));
  expect(statuses.slice(1)).toEqual(['queued', 'queued']);
  const metrics = (await server.call('GET', '/metrics', undefined, null)).body as string;
  expect(Number(/^flowgate_runs_awaiting_launch (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);

  for (const id of ids) expect((await waitForRun(server, id)).status).toBe('Completed');
  const started = await Promise.all(ids.map(async (id) => (await server.services.store.findById(id))!.startedAt!.getTime()));
  expect([...started].sort((a, b) => a - b)).toEqual(started);
});
