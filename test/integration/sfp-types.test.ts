import { BUILTIN_FLOWS, createProject, createToken, startTestServer, waitForRun, type TestServer } from '../support/server.js';

let server: TestServer;
const FLOWS = '/sfp/api/flows';
beforeAll(async () => {
  server = await startTestServer({ flows: BUILTIN_FLOWS });
  await createProject(server, 'acme/app');
});
afterAll(async () => { await server?.stop(); });

test('lists the built-in flow types with their parameters', async () => {
  const r = await server.call('GET', `${FLOWS}/types`);
  expect(r.status).toBe(200);
  expect(r.body.count).toBe(r.body.taskTypes.length);
  expect(r.body.taskTypes.map((t: any) => t.id)).toEqual(expect.arrayContaining(['request-elevated-privileges', 'build-on-merge', 'monitor-pool', 'release', 'build-domain']));
  const one = await server.call('GET', `${FLOWS}/types/request-elevated-privileges`);
  expect(one.body).toMatchObject({ id: 'request-elevated-privileges', category: 'access', executionMode: 'flow' });
  expect(one.body.parameters).toEqual(expect.arrayContaining([
    { name: 'username', description: 'Who gets access', type: 'string', required: true },
    { name: 'durationMinutes', description: 'How long the access lasts', type: 'number', required: false, default: 60 },
  ]));
  expect((await server.call('GET', `${FLOWS}/types/build-on-merge`)).body.executionMode).toBe('cicd');
  const missing = await server.call('GET', `${FLOWS}/types/nope`);
  expect(missing.status).toBe(404);
  expect(missing.body.message).toBe('Flow type "nope" not found');
});

test('enable/disable per project shows in /types/status', async () => {
  const status = (repo = 'acme/app') => server.call('GET', `${FLOWS}/types/status?repositoryIdentifier=${repo}`);
  expect((await status()).body.flowTypes.every((t: any) => t.enabled)).toBe(true);
  const off = await server.call('POST', `${FLOWS}/types/monitor-pool/disable`, { repositoryIdentifier: 'acme/app' });
  expect(off.body).toEqual({ id: 'monitor-pool', repositoryIdentifier: 'acme/app', enabled: false });
  expect((await status()).body.flowTypes.find((t: any) => t.id === 'monitor-pool')).toEqual({ id: 'monitor-pool', name: 'Monitor Pool', enabled: false });
  const refused = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'monitor-pool', repositoryIdentifier: 'acme/app' } });
  expect(refused.status).toBe(400);
  await server.call('POST', `${FLOWS}/types/monitor-pool/enable`, { repositoryIdentifier: 'acme/app' });
  expect((await status()).body.flowTypes.find((t: any) => t.id === 'monitor-pool').enabled).toBe(true);

  expect((await status('acme/none')).status).toBe(404);
  const noRepo = await server.call('GET', `${FLOWS}/types/status`);
  expect(noRepo.status).toBe(400);
  expect(noRepo.body.message).toEqual([expect.stringMatching(/^repositoryIdentifier: /)]);
});

test('overrides: set, shown, validated, removed', async () => {
  const set = await server.call('POST', `${FLOWS}/types/build-domain/override`, { repositoryIdentifier: 'acme/app', overrideFlowTypeId: 'monitor-pool' });
  expect(set.status).toBe(200);
  const st = (await server.call('GET', `${FLOWS}/types/status?repositoryIdentifier=acme/app`)).body.flowTypes.find((t: any) => t.id === 'build-domain');
  expect(st.overrideFlowTypeId).toBe('monitor-pool');
  const unknown = await server.call('POST', `${FLOWS}/types/build-domain/override`, { repositoryIdentifier: 'acme/app', overrideFlowTypeId: 'nope' });
  expect(unknown.status).toBe(400);
  expect(unknown.body.message).toEqual(['overrideFlowTypeId: unknown flow type "nope"']);
  const removed = await server.call('DELETE', `${FLOWS}/types/build-domain/override`, { repositoryIdentifier: 'acme/app' });
  expect(removed.body.overrideFlowTypeId).toBeNull();
  const after = (await server.call('GET', `${FLOWS}/types/status?repositoryIdentifier=acme/app`)).body.flowTypes.find((t: any) => t.id === 'build-domain');
  expect(after).not.toHaveProperty('overrideFlowTypeId');
  const audit = await server.services.audit.list({ targetType: 'project', targetId: 'acme/app' });
  expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['flow_type.override_set', 'flow_type.override_removed', 'flow_type.disabled', 'flow_type.enabled']));
});

test('role and existence rules: member 403, unknown project or type 404, missing body field 400', async () => {
  const member = await createToken(server, { name: 'm', role: 'member', email: 'dev@acme.io' });
  const app = await createToken(server, { name: 'ci', role: 'application' });
  const forbidden = await server.call('POST', `${FLOWS}/types/release/disable`, { repositoryIdentifier: 'acme/app' }, member);
  expect(forbidden).toMatchObject({ status: 403, body: { statusCode: 403, message: 'Forbidden - Requires role: owner, application', error: 'Forbidden' } });
  expect((await server.call('POST', `${FLOWS}/types/release/disable`, { repositoryIdentifier: 'acme/app' }, app)).status).toBe(200);
  expect((await server.call('POST', `${FLOWS}/types/release/enable`, { repositoryIdentifier: 'acme/app' }, app)).status).toBe(200);
  expect((await server.call('GET', `${FLOWS}/types`, undefined, member)).status).toBe(200);
  expect((await server.call('POST', `${FLOWS}/types/release/disable`, { repositoryIdentifier: 'acme/none' })).status).toBe(404);
  expect((await server.call('POST', `${FLOWS}/types/nope/disable`, { repositoryIdentifier: 'acme/app' })).status).toBe(404);
  expect((await server.call('DELETE', `${FLOWS}/types/nope/override`, { repositoryIdentifier: 'acme/app' })).status).toBe(404);
  const bad = await server.call('POST', `${FLOWS}/types/release/override`, { repositoryIdentifier: 'acme/app' });
  expect(bad.status).toBe(400);
  expect(bad.body.message).toEqual([expect.stringMatching(/^overrideFlowTypeId: /)]);
  expect((await server.call('GET', `${FLOWS}/types`, undefined, null)).status).toBe(401);
});

test('a built-in flow whose credentials are not configured fails with a clear step error', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'monitor-pool', repositoryIdentifier: 'acme/app' } });
  expect(r.status).toBe(201);
  const run = await waitForRun(server, r.body.id, ['Failed'], 30_000);
  expect(run.steps.find((s: any) => s.ref === 'fetch').error).toMatch(/POOL_API/);
});
