import { createProject, eventually, startTestServer, type TestServer } from '../support/server.js';

// A server on the previous engine (FLOWGATE_ENGINE=dbos, kept for one release): its runs are
// listed, read and cancelled over /v1/workflow-runs, and run control names why it does not apply.
const WR = '/v1/workflow-runs';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { FLOWGATE_ENGINE: 'dbos' } });
  await createProject(server, 'acme/app');
});
afterAll(async () => {
  await server?.stop();
});

test('run control on a run of the previous engine is refused with 409, naming why; cancel still applies', async () => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'waiter', repositoryIdentifier: 'acme/app' } });
  const id = r.body.id as string;
  await eventually(async () => ((await server.call('GET', `${WR}/${id}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
  for (const p of ['pause', 'resume', 'steps/wait/skip', 'steps/wait/force-complete', 'steps/wait/retry', 'steps/wait/replay-subtree']) {
    const refused = await server.call('POST', `${WR}/${id}/${p}`, {});
    expect({ p, status: refused.status, code: refused.body.error?.code }).toEqual({ p, status: 409, code: 'conflict' });
    expect(refused.body.error.message).toMatch(/previous engine/);
  }
  expect((await server.call('GET', `${WR}/${id}`)).body.status).toBe('running');
  expect((await server.call('DELETE', `${WR}/${id}`)).status).toBe(204);
  expect((await server.call('GET', `${WR}/${id}`)).body.status).toBe('canceled');
});

test('a run retry is a new run on Engine v2, which this process does not run: 503 naming the setting', async () => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'waiter', repositoryIdentifier: 'acme/app' } });
  const id = r.body.id as string;
  await server.call('DELETE', `${WR}/${id}`);
  const retry = await server.call('POST', `${WR}/${id}/retry`);
  expect({ status: retry.status, code: retry.body.error?.code }).toEqual({ status: 503, code: 'service_unavailable' });
  expect(retry.body.error.message).toMatch(/FLOWGATE_ENGINE=v2/);
});
