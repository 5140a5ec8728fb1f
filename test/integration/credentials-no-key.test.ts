import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startTestServer, type TestServer } from '../support/server.js';

// Without FLOWGATE_ENCRYPTION_KEY the credential routes answer 503 naming the setting, and flows
// still read `${NAME}` from FLOWGATE_CREDENTIAL_<NAME>.
let server: TestServer;
const target = new Recorder();
const ENV_VALUE = 'env-only-value-4711';

beforeAll(async () => {
  await target.start();
  server = await startTestServer({ env: { FLOWGATE_CREDENTIAL_ENV_ONLY: ENV_VALUE, FLOWGATE_ENCRYPTION_KEY: undefined } });
  await createProject(server, 'acme/app', { namespace: 'acme.app' });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

test('every credential route: 503 service_unavailable naming FLOWGATE_ENCRYPTION_KEY (after authentication)', async () => {
  const id = '0190a5b2-0000-7000-8000-000000000000';
  for (const [method, path, body] of [['GET', '/api/v1/credentials'], ['GET', '/api/v1/credentials?namespace=acme.app'], ['POST', '/api/v1/credentials', { name: 'X', value: 'v' }],
    ['GET', `/api/v1/credentials/${id}`], ['PUT', `/api/v1/credentials/${id}`, { value: 'v' }], ['DELETE', `/api/v1/credentials/${id}`]] as const) {
    const r = await server.call(method, path, body);
    expect({ method, path, status: r.status, code: r.body?.code }).toEqual({ method, path, status: 503, code: 'service_unavailable' });
    expect(r.body.error).toMatch(/FLOWGATE_ENCRYPTION_KEY/);
  }
  expect((await server.call('GET', '/api/v1/credentials', undefined, null)).status).toBe(401);
  expect((await server.call('GET', '/healthz', undefined, null)).status).toBe(200);
  const doc = await server.call('GET', '/openapi.json', undefined, null);
  expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/v1/credentials', '/api/v1/credentials/{id}']));
});

test('a flow document still resolves ${NAME} from the environment', async () => {
  const flow = await server.call('POST', '/api/v1/flows', { yamlContent: `
name: env-call
namespace: acme.app
tasks:
  - { name: call, type: http.request, properties: { url: "${target.url}/env", headers: { x-token: "\${ENV_ONLY}" } } }
` });
  expect(flow.status).toBe(201);
  const started = await server.call('POST', `/api/v1/flows/${flow.body.id}/execute`, { inputs: {} });
  expect(started.status).toBe(202);
  const done = await eventually(async () => {
    const e = await server.call('GET', `/api/v1/executions/${started.body.executionId}`);
    return ['SUCCESS', 'FAILED'].includes(e.body?.execution?.status) ? e.body : undefined;
  }, 30_000);
  expect(done.execution.status).toBe('SUCCESS');
  expect(target.to('/env')[0].headers['x-token']).toBe(ENV_VALUE);
  expect(JSON.stringify(done)).not.toContain(ENV_VALUE);
});
