import { createProject, createToken, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

test('a new project gets its namespace from its repository identifier, or the next free one', async () => {
  await createProject(server, 'acme/app');
  expect((await server.call('GET', '/api/v1/projects/acme/app')).body).toMatchObject({ repositoryIdentifier: 'acme/app', namespace: 'acme.app' });
  // `Acme/App` would derive the same name: it gets a suffix.
  await createProject(server, 'Acme/App');
  expect((await server.call('GET', '/api/v1/projects/Acme/App')).body.namespace).toBe('acme.app-2');
  await createProject(server, 'Org/Team_Project/_repo', { provider: 'azure-devops' });
  expect((await server.call('GET', '/api/v1/projects/Org/Team_Project/_repo')).body.namespace).toBe('org.team_project._repo');
  await createProject(server, '_x/y');
  expect((await server.call('GET', '/api/v1/projects/_x/y')).body.namespace).toBe('x.y');
});

test('a namespace can be chosen; a taken one is 409, a malformed one 400; the project keeps it on later updates', async () => {
  await createProject(server, 'acme/prod', { namespace: 'production' });
  expect((await server.call('GET', '/api/v1/projects/acme/prod')).body.namespace).toBe('production');
  await createProject(server, 'acme/prod', { slackChannel: 'C1' });
  expect((await server.call('GET', '/api/v1/projects/acme/prod')).body.namespace).toBe('production');
  const taken = await server.call('PUT', '/api/v1/projects/acme/other', { provider: 'github', owners: ['o@acme.io'], namespace: 'production' });
  expect(taken.status).toBe(409);
  expect(taken.body).toMatchObject({ code: 'conflict', error: 'Namespace production is already the namespace of project acme/prod' });
  expect((await server.call('GET', '/api/v1/projects/acme/other')).status).toBe(404);
  const bad = await server.call('PUT', '/api/v1/projects/acme/other', { provider: 'github', owners: ['o@acme.io'], namespace: 'Prod!' });
  expect(bad.status).toBe(400);
  expect(bad.body.details).toEqual([expect.objectContaining({ field: 'namespace' })]);
});

test('GET /api/v1/namespaces lists the namespaces the token may see', async () => {
  const all = (await server.call('GET', '/api/v1/namespaces')).body;
  expect(all).toEqual(expect.arrayContaining([{ namespace: 'acme.app', repositoryIdentifier: 'acme/app' }, { namespace: 'production', repositoryIdentifier: 'acme/prod' }]));
  expect(all.map((n: any) => n.namespace)).toEqual([...all.map((n: any) => n.namespace)].sort());
  const scoped = await createToken(server, { name: 'scoped', role: 'viewer', projects: ['acme/prod'] });
  expect((await server.call('GET', '/api/v1/namespaces', undefined, scoped)).body).toEqual([{ namespace: 'production', repositoryIdentifier: 'acme/prod' }]);
  expect((await server.call('GET', '/api/v1/namespaces', undefined, null)).status).toBe(401);
});
