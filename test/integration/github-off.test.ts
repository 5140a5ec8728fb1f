import { createDoors } from '../../src/doors/index.js';
import { createProject, startTestServer, type TestServer } from '../support/server.js';

// Without its settings the GitHub door is off: no webhook route, no GitHub Actions dispatch.
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/app');
});
afterAll(async () => {
  await server?.stop();
});

test('the door is off, says which variables turn it on, and mounts nothing', async () => {
  expect(server.services.config.github).toBeUndefined();
  const { doors, off } = createDoors(server.services);
  expect(doors.map((d) => d.name)).not.toContain('github');
  expect(off).toContain('GitHub (set GITHUB_APP_ID, GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, and GITHUB_WEBHOOK_SECRET to turn it on)');
  const r = await fetch(`${server.url}/github/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'ping' }, body: '{}' });
  expect(r.status).toBe(404);
});

test('github-actions flow types are refused as not configured', async () => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'cicd-build', repositoryIdentifier: 'acme/app', commitSha: 'abc' } });
  expect(r.status).toBe(400);
  expect(r.body.summary).toBe('Flow type "cicd-build" runs in cicd mode on github-actions; no github-actions dispatcher is configured on this server');
});
