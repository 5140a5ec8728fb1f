import pg from 'pg';
import { createProject, createToken, eventually, startTestServer, type TestServer, waitForRun } from '../support/server.js';

let server: TestServer;
let db: pg.Pool;
let viewer: string;
let member: string;

const FLOW = (name = 'deploy', message = 'deploying {{ inputs.version }} to {{ inputs.env }}') => `
name: ${name}
namespace: production
description: Deploys a version
inputs:
  env: staging
  version: { type: string, required: true }
tasks:
  - { name: say, type: util.log, properties: { message: "${message}" } }
  - { name: hash, type: transform.hash, properties: { value: "{{ outputs.say.message }}" } }
outputs: { digest: "{{ outputs['hash']['hash'] }}", env: "{{ inputs.env }}" }
`;

beforeAll(async () => {
  server = await startTestServer();
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/prod', { namespace: 'production' });
  await createProject(server, 'acme/app');
  viewer = await createToken(server, { name: 'viewer', role: 'viewer' });
  member = await createToken(server, { name: 'member', role: 'member', email: 'dev@acme.io' });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const create = (yamlContent: string, extra: Record<string, unknown> = {}) => server.call('POST', '/api/v1/flows', { yamlContent, ...extra });

describe('flow documents', () => {
  let id: string;

  test('create: 201 with Location; the flow is a flow type <namespace>:<name> at revision 1', async () => {
    const r = await create(FLOW());
    expect(r.status).toBe(201);
    id = r.body.id;
    expect(r.headers.get('location')).toBe(`/api/v1/flows/${id}`);
    expect(r.body).toMatchObject({
      name: 'deploy', namespace: 'production', flowType: 'production:deploy', description: 'Deploys a version', revision: 1, source: 'api', readOnly: false,
      createdBy: 'token:admin', updatedBy: 'token:admin', yamlContent: FLOW(),
    });
    expect(server.services.registry.find('production:deploy')).toMatchObject({ id: 'production:deploy', document: { id, namespace: 'production', revision: 1 } });
    const audit = await db.query(`select action, details from audit_events where target_type = 'flow' and target_id = $1`, [id]);
    expect(audit.rows).toEqual([{ action: 'flow.created', details: { name: 'deploy', namespace: 'production', revision: 1 } }]);
  });

  test('create refuses: a taken name (409), invalid content with errors and warnings by path (422), an unknown namespace (422), a body name that disagrees', async () => {
    expect((await create(FLOW())).status).toBe(409);
    const bad = await create('name: broken\nnamespace: production\ninputs: { unused: 1 }\ntasks:\n  - { name: a, type: util.lgo, properties: { message: x } }\n');
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ code: 'validation_failed', errors: [{ path: 'tasks[0].type', message: 'unknown plugin "util.lgo" (did you mean util.log?)' }] });
    const nowhere = await create(FLOW().replace('namespace: production', 'namespace: nowhere'));
    expect(nowhere.status).toBe(422);
    expect(nowhere.body.errors).toEqual([{ path: 'namespace', message: 'no namespace nowhere (GET /api/v1/namespaces)' }]);
    const disagree = await create(FLOW('other'), { name: 'else' });
    expect(disagree.status).toBe(422);
    expect(disagree.body.errors).toEqual([expect.objectContaining({ path: 'name' })]);
    expect((await create(FLOW('other'), { namespace: 'acme.app' })).status).toBe(422);
    expect((await server.call('POST', '/api/v1/flows', { yamlContent: FLOW('x'), colour: 1 })).body).toMatchObject({ code: 'bad_request' });
    expect((await create(`name: big\nnamespace: production\ndescription: "${'x'.repeat(300 * 1024)}"\ntasks: []\n`)).status).toBe(413);
  });

  test('list and get: manifests read-only in namespace flowgate, documents of visible namespaces; an invisible one is 404', async () => {
    const all = (await server.call('GET', '/api/v1/flows')).body;
    expect(all.find((f: any) => f.id === id)).toMatchObject({ flowType: 'production:deploy' });
    expect(all.find((f: any) => f.id === 'notifier')).toMatchObject({ namespace: 'flowgate', source: 'manifest', readOnly: true, revision: null, yamlContent: expect.stringContaining('id: notifier') });
    expect((await server.call('GET', '/api/v1/flows?namespace=production')).body.map((f: any) => f.id)).toEqual([id]);
    expect((await server.call('GET', `/api/v1/flows/${id}`, undefined, viewer)).body.name).toBe('deploy');
    const scoped = await createToken(server, { name: 'app-only', role: 'owner', projects: ['acme/app'] });
    expect((await server.call('GET', `/api/v1/flows/${id}`, undefined, scoped)).status).toBe(404);
    expect((await server.call('GET', '/api/v1/flows', undefined, scoped)).body.some((f: any) => f.id === id)).toBe(false);
    expect((await server.call('GET', '/api/v1/flows/notifier')).body.source).toBe('manifest');
  });

  test('update: a new revision for new YAML, none for the same; a stale revision is 409 with the current one; rename', async () => {
    const same = await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW() });
    expect(same.body.revision).toBe(1);
    const changed = await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW('deploy', 'v2 {{ inputs.version }}'), revision: 1 });
    expect(changed.status).toBe(200);
    expect(changed.body.revision).toBe(2);
    const stale = await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW('deploy', 'v3'), revision: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: 'conflict', revision: 2 });
    const renamed = await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW('ship', 'v3 {{ inputs.version }}') });
    expect(renamed.body).toMatchObject({ name: 'ship', flowType: 'production:ship', revision: 3 });
    expect(server.services.registry.find('production:deploy')).toBeUndefined();
    expect(server.services.registry.find('production:ship')?.document?.revision).toBe(3);
    const invalid = await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: 'name: ship\ntasks: 3\n' });
    expect(invalid.status).toBe(422);
  });

  test('revisions newest first; one revision; restore makes a new revision from an old one', async () => {
    const revs = (await server.call('GET', `/api/v1/flows/${id}/revisions`)).body;
    expect(revs.map((r: any) => r.revision)).toEqual([3, 2, 1]);
    expect(revs[2]).toMatchObject({ flowId: id, yamlContent: FLOW(), createdBy: 'token:admin', restoredFrom: null });
    expect((await server.call('GET', `/api/v1/flows/${id}/revisions/2`)).body.yamlContent).toContain('v2 {{ inputs.version }}');
    expect((await server.call('GET', `/api/v1/flows/${id}/revisions/9`)).status).toBe(404);
    const restored = await server.call('POST', `/api/v1/flows/${id}/revisions/1/restore`);
    expect(restored.body).toMatchObject({ name: 'deploy', revision: 4 });
    expect((await server.call('GET', `/api/v1/flows/${id}/revisions`)).body[0]).toMatchObject({ revision: 4, restoredFrom: 1 });
    // Restoring what is current adds nothing.
    expect((await server.call('POST', `/api/v1/flows/${id}/revisions/4/restore`)).body.revision).toBe(4);
  });

  test('manifest flows are read-only: PUT, DELETE and restore are 403; they have no revisions', async () => {
    expect((await server.call('PUT', '/api/v1/flows/notifier', { yamlContent: FLOW('n') })).status).toBe(403);
    expect((await server.call('DELETE', '/api/v1/flows/notifier')).status).toBe(403);
    expect((await server.call('POST', '/api/v1/flows/notifier/revisions/1/restore')).status).toBe(403);
    expect((await server.call('GET', '/api/v1/flows/notifier/revisions')).body).toEqual([]);
  });

  test('validate: always 200 with errors and warnings; raw YAML accepted', async () => {
    const ok = await server.call('POST', '/api/v1/flows/validate', { yamlContent: FLOW('x') });
    expect(ok.body).toEqual({ valid: true, errors: [], warnings: [] });
    const bad = await server.call('POST', '/api/v1/flows/validate', { yamlContent: 'name: x\ninputs: { unused: 1 }\ntasks:\n  - { name: a, type: util.log, depends_on: [], properties: { message: m } }\n', namespace: 'nowhere' }, viewer);
    expect(bad.status).toBe(200);
    expect(bad.body).toEqual({ valid: false, errors: [{ path: 'namespace', message: 'no namespace nowhere' }], warnings: [{ path: 'tasks[0].depends_on', message: 'read as dependsOn' }, { path: 'inputs.unused', message: 'declared but no task uses it' }] });
    const raw = await fetch(`${server.url}/api/v1/flows/validate`, { method: 'POST', headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/yaml' }, body: 'name: y\ntasks:\n  - { name: a, type: util.lgo }\n' });
    expect(await raw.json()).toMatchObject({ valid: false, errors: [{ path: 'tasks[0].type' }] });
  });

  test('export and import round-trip; a taken name is 409, or a new revision with overwrite', async () => {
    const exp = await server.call('GET', `/api/v1/flows/${id}/export`);
    expect(exp.headers.get('content-disposition')).toBe('attachment; filename="production.deploy.json"');
    expect(exp.body).toMatchObject({ version: 1, name: 'deploy', namespace: 'production', yamlContent: FLOW(), revision: 4 });
    expect((await server.call('POST', '/api/v1/flows/import', exp.body)).status).toBe(409);
    const over = await server.call('POST', '/api/v1/flows/import?overwrite=true', { ...exp.body, yamlContent: FLOW('deploy', 'imported') });
    expect(over.status).toBe(200);
    expect(over.body).toMatchObject({ id, revision: 5 });
    const copy = await server.call('POST', '/api/v1/flows/import', { ...exp.body, yamlContent: FLOW('copy') });
    expect(copy.status).toBe(201);
    expect(copy.body).toMatchObject({ name: 'copy', revision: 1 });
    expect((await server.call('POST', '/api/v1/flows/import', { version: 1 })).status).toBe(400);
  });

  test('roles: a viewer reads but cannot create; a member executes but cannot edit', async () => {
    expect((await server.call('POST', '/api/v1/flows', { yamlContent: FLOW('v') }, viewer)).status).toBe(403);
    expect((await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW('v') }, member)).status).toBe(403);
    expect((await server.call('POST', `/api/v1/flows/${id}/execute`, { inputs: { version: '1' } }, viewer)).status).toBe(403);
    expect((await server.call('GET', '/api/v1/flows', undefined, null)).status).toBe(401);
  });

  test('execute: 202 with the execution; inputs validated and defaulted; the run completes with the document\'s outputs', async () => {
    await server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW() });
    const r = await server.call('POST', `/api/v1/flows/${id}/execute`, { inputs: { version: '1.4' } }, member);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ executionId: expect.any(String), status: 'QUEUED', tasksTotal: 2 });
    expect(r.headers.get('location')).toBe(`/api/v1/executions/${r.body.executionId}`);
    const run = await waitForRun(server, r.body.executionId);
    expect(run.status).toBe('Completed');
    const { rows: [row] } = await db.query('select task_type, repository_identifier, triggered_by, result, definition from runs where id = $1', [r.body.executionId]);
    expect(row).toMatchObject({ task_type: 'production:deploy', repository_identifier: 'acme/prod', triggered_by: 'dev@acme.io' });
    expect(row.result.env).toBe('staging');
    expect(row.result.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(row.definition.document).toMatchObject({ id, revision: 6 });
    // The execution names the flow document and the revision it ran; the list filters by the flow's id.
    const exec = await server.call('GET', `/api/v1/executions/${r.body.executionId}`);
    expect(exec.body.execution).toMatchObject({ flowId: id, flowName: 'deploy', flowRevision: 6, namespace: 'production', status: 'SUCCESS', inputs: { version: '1.4', env: 'staging' } });
    expect(exec.body.tasks.map((t: any) => [t.taskName, t.taskType, t.status])).toEqual([['say', 'util.log', 'SUCCESS'], ['hash', 'transform.hash', 'SUCCESS']]);
    expect((await server.call('GET', `/api/v1/executions?flowId=${id}`)).body.map((e: any) => e.id)).toContain(r.body.executionId);
    const missing = await server.call('POST', `/api/v1/flows/${id}/execute`, { inputs: {} });
    expect(missing.status).toBe(422);
    expect(missing.body.errors).toEqual([expect.objectContaining({ path: 'inputs.version' })]);
    const stray = await server.call('POST', `/api/v1/flows/${id}/execute`, { version: '1' });
    expect(stray.status).toBe(400);
    expect(stray.body.error).toBe('put inputs under `inputs`');
    expect((await server.call('POST', `/api/v1/flows/${id}/execute`, { inputs: { version: '1' }, namespace: 'acme.app' })).status).toBe(422);
  });

  test('a manifest flow executes in the namespace it is given; a document flow runs only in its own project (any API)', async () => {
    expect((await server.call('POST', '/api/v1/flows/notifier/execute', { inputs: { text: 'hi' } })).status).toBe(422);
    const r = await server.call('POST', '/api/v1/flows/notifier/execute', { inputs: { text: 'hi' }, namespace: 'acme.app' });
    expect(r.status).toBe(202);
    expect((await waitForRun(server, r.body.executionId)).status).toBe('Completed');
    const sfp = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'production:deploy', repositoryIdentifier: 'acme/app', version: '1' } });
    expect(sfp.status).toBe(400);
    const ok = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'production:deploy', repositoryIdentifier: 'acme/prod', version: '1' } });
    expect(ok.status).toBe(201);
  });

  test('a change made elsewhere (another replica) reaches this registry within a second', async () => {
    // Written as another replica would, without this process hearing of it.
    await db.query(`update flow_documents set name = 'elsewhere' where id = $1`, [id]);
    await db.query(`select nextval('flow_documents_version')`);
    await eventually(async () => (server.services.registry.find('production:elsewhere') ? true : undefined), 5_000, 'registry follows');
    expect(server.services.registry.find('production:deploy')).toBeUndefined();
  });

  test('a namespace that holds flows cannot be renamed; delete removes the flow and its revisions, its runs stay', async () => {
    const rename = await server.call('PUT', '/api/v1/projects/acme/prod', { provider: 'github', owners: ['owner@acme.io'], namespace: 'prod2' });
    expect(rename.status).toBe(409);
    const runs = (await db.query(`select count(*)::int as n from runs where definition->'document'->>'id' = $1`, [id])).rows[0].n;
    expect((await server.call('DELETE', `/api/v1/flows/${id}`)).status).toBe(204);
    expect((await server.call('GET', `/api/v1/flows/${id}`)).status).toBe(404);
    expect((await db.query('select count(*)::int as n from flow_revisions where flow_id = $1', [id])).rows[0].n).toBe(0);
    expect((await db.query(`select count(*)::int as n from runs where definition->'document'->>'id' = $1`, [id])).rows[0].n).toBe(runs);
    expect(server.services.registry.find('production:elsewhere')).toBeUndefined();
  });
});

describe('flow documents in the other listings', () => {
  test('sfp /types, /types/status and /types/{id} show a document only to callers of its project; a start elsewhere lists only what runs there', async () => {
    const r = await create(FLOW('listed'));
    expect(r.status).toBe(201);
    const prodOnly = await createToken(server, { name: 'prod-only', role: 'member', projects: ['acme/prod'] });
    const appOnly = await createToken(server, { name: 'app-only', role: 'member', projects: ['acme/app'] });
    const ids = async (token?: string) => (await server.call('GET', '/sfp/api/flows/types', undefined, token)).body.taskTypes.map((t: { id: string }) => t.id);
    expect(await ids()).toContain('production:listed');
    expect(await ids(prodOnly)).toContain('production:listed');
    const seenByApp = await ids(appOnly);
    expect(seenByApp).not.toContain('production:listed');
    // Manifest flow types are everyone's.
    expect(seenByApp).toEqual(expect.arrayContaining(server.services.registry.manifests().map((d) => d.id)));

    const status = async (project: string) => (await server.call('GET', `/sfp/api/flows/types/status?repositoryIdentifier=${project}`)).body.flowTypes.map((t: { id: string }) => t.id);
    expect(await status('acme/prod')).toContain('production:listed');
    expect(await status('acme/app')).not.toContain('production:listed');

    expect((await server.call('GET', '/sfp/api/flows/types/production:listed', undefined, prodOnly)).status).toBe(200);
    expect((await server.call('GET', '/sfp/api/flows/types/production:listed', undefined, appOnly)).status).toBe(404);

    const elsewhere = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'nope', repositoryIdentifier: 'acme/app' } });
    expect(elsewhere.status).toBe(400);
    expect(JSON.stringify(elsewhere.body)).not.toContain('production:');
  });
});
