import { createToken, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server?.stop(); });

describe('tokens', () => {
  test('an owner creates a token whose secret is shown once and which then authenticates', async () => {
    const created = await server.call('POST', '/api/v1/tokens', { name: 'ci', role: 'application', projects: ['acme/app'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'ci', role: 'application', email: null, projects: ['acme/app'] });
    expect(created.body.token).toMatch(/^fg_/);

    const list = await server.call('GET', '/api/v1/tokens');
    const row = list.body.tokens.find((t: any) => t.id === created.body.id);
    expect(row).toMatchObject({ name: 'ci', role: 'application' });
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    expect(row).not.toHaveProperty('token');
    expect(row).not.toHaveProperty('tokenHash');

    // The new token works (application role may read flow types) but may not manage tokens.
    expect((await server.call('GET', '/sfp/api/flows/types', undefined, created.body.token)).status).toBe(200);
    const forbidden = await server.call('GET', '/api/v1/tokens', undefined, created.body.token);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe('Forbidden - Requires role: owner, member, viewer');
  });

  test('a viewer token is created like any other and only reads; the database takes the role', async () => {
    const created = await server.call('POST', '/api/v1/tokens', { name: 'ro', role: 'viewer', projects: ['acme/app'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ role: 'viewer', createdBy: expect.any(String) });
    const [row] = await server.services.orm.em.getConnection().execute('select role from api_tokens where id = ?', [created.body.id]);
    expect(row.role).toBe('viewer');
    expect((await server.call('GET', '/sfp/api/flows/types', undefined, created.body.token)).status).toBe(200);
    expect((await server.call('POST', '/api/v1/tokens', { name: 'x', role: 'viewer', projects: ['acme/app'] }, created.body.token)).status).toBe(403);
    // Its own token is all it sees of the token list.
    expect((await server.call('GET', '/api/v1/tokens', undefined, created.body.token)).body.tokens.map((t: any) => t.id)).toEqual([created.body.id]);
  });

  test('a revoked token stops working at once', async () => {
    const secret = await createToken(server, { name: 'temp', role: 'member', email: 'Dev@Acme.io' });
    const list = await server.call('GET', '/api/v1/tokens');
    const row = list.body.tokens.find((t: any) => t.name === 'temp');
    expect(row.email).toBe('dev@acme.io');
    expect((await server.call('DELETE', `/api/v1/tokens/${row.id}`)).status).toBe(204);
    const after = await server.call('GET', '/sfp/api/flows/types', undefined, secret);
    expect(after.status).toBe(401);
    expect((await server.call('DELETE', `/api/v1/tokens/${row.id}`)).status).toBe(404);
  });

  test('bad input names the field; missing or wrong tokens are 401', async () => {
    const bad = await server.call('POST', '/api/v1/tokens', { name: '', role: 'admin', email: 'nope' });
    expect(bad.status).toBe(400);
    const fields = bad.body.details.map((d: any) => d.field).sort();
    expect(fields).toEqual(['email', 'name', 'role']);
    expect((await server.call('DELETE', '/api/v1/tokens/not-a-uuid')).body.details[0].field).toBe('id');
    const none = await server.call('GET', '/api/v1/tokens', undefined, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await server.call('GET', '/api/v1/tokens', undefined, 'fg_wrong')).status).toBe(401);
    const notJson = await server.call('POST', '/api/v1/tokens', '{"name":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/not valid JSON/);
  });
});

describe('projects', () => {
  test('identifiers with slashes are accepted raw and URL-encoded', async () => {
    const put = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['Owner@Acme.io'], members: ['dev@acme.io'], slackChannel: 'C123' });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ repositoryIdentifier: 'acme/app', owners: ['owner@acme.io'], slackChannel: 'C123', disabledFlowTypes: [], overrides: {} });
    const ado = await server.call('PUT', `/api/v1/projects/${encodeURIComponent('contoso/web/portal')}`, { provider: 'azure-devops', owners: ['lead@contoso.com'] });
    expect(ado.status).toBe(201);
    expect((await server.call('GET', '/api/v1/projects/contoso/web/portal')).body.provider).toBe('azure-devops');
    expect((await server.call('GET', '/api/v1/projects/acme%2Fapp')).body.repositoryIdentifier).toBe('acme/app');
    const again = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: [] });
    expect(again.status).toBe(200);
    expect(again.body.owners).toEqual([]);
    const list = await server.call('GET', '/api/v1/projects');
    expect(list.body.projects.map((p: any) => p.repositoryIdentifier)).toEqual(['acme/app', 'contoso/web/portal']);
  });

  test('deleting, unknown projects and bad bodies', async () => {
    await server.call('PUT', '/api/v1/projects/acme/gone', { provider: 'github' });
    expect((await server.call('DELETE', '/api/v1/projects/acme/gone')).status).toBe(204);
    const missing = await server.call('GET', '/api/v1/projects/acme/gone');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('Project acme/gone not found');
    const bad = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'gitlab', owners: ['x'] });
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: any) => d.field).sort()).toEqual(['owners.0', 'provider']);
    expect((await server.call('PUT', '/api/v1/projects/just-one-segment', { provider: 'github' })).body.details[0].field).toBe('repositoryIdentifier');
  });

  test('only owners manage projects, and scoped tokens only their own', async () => {
    const member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
    expect((await server.call('GET', '/api/v1/projects', undefined, member)).status).toBe(403);
    const scoped = await createToken(server, { name: 'scoped-owner', role: 'owner', projects: ['acme/app'] });
    expect((await server.call('GET', '/api/v1/projects/acme/app', undefined, scoped)).status).toBe(200);
    const other = await server.call('GET', '/api/v1/projects/contoso/web/portal', undefined, scoped);
    expect(other.status).toBe(403);
    expect(other.body.error).toMatch(/not allowed to access project contoso\/web\/portal/);
  });

  test('every change is audited with who and through which door', async () => {
    const events = await server.services.audit.list({ targetType: 'project', targetId: 'acme/app' });
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['project.created', 'project.updated']));
    expect(events.every((e) => e.door === 'rest' && e.actor === 'token:admin')).toBe(true);
  });
});

describe('platform', () => {
  test('health, readiness, metrics and the generated OpenAPI document', async () => {
    expect((await server.call('GET', '/healthz', undefined, null)).body).toEqual({ status: 'ok' });
    const ready = await server.call('GET', '/readyz', undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: 'ok', engine: 'ok' });
    const metrics = await server.call('GET', '/metrics', undefined, null);
    expect(metrics.body).toContain('flowgate_http_request_duration_seconds_bucket');
    expect(metrics.body).toMatch(/route="\/api\/v1\/projects\/\*repositoryIdentifier"/);
    expect(metrics.body).toContain('flowgate_engine_queue_depth');
    expect(metrics.body).toMatch(/^flowgate_runs_awaiting_launch 0$/m);
    expect(metrics.body).toMatch(/^flowgate_unauthenticated_requests_total\{surface="rest"\} [1-9]/m);
    const doc = (await server.call('GET', '/openapi.json', undefined, null)).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/sfp/api/flows/run', '/sfp/api/flows/runs', '/sfp/api/flows/{id}', '/api/v1/projects/{repositoryIdentifier}', '/api/v1/tokens']));
    const run = doc.paths['/sfp/api/flows/run'].post;
    expect(run.requestBody.content['application/json'].schema.required).toEqual(['payload']);
    expect(doc.paths['/sfp/api/flows/runs'].get.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['repositoryIdentifier', 'limit', 'since', 'includeScheduled', 'date']));
  });

  test('unknown routes answer 404 in the dialect of their prefix', async () => {
    const sfp = await server.call('GET', '/sfp/api/flows/types/x/y/z');
    expect(sfp.status).toBe(404);
    expect(sfp.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    const api = await server.call('GET', '/api/v1/nothing');
    expect(api.status).toBe(404);
    expect(api.body.error).toMatch(/No route/);
  });
});
