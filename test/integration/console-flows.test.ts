import { consoleServer, textOf } from '../support/console.js';
import { createProject, waitForRun } from '../support/server.js';

const FLOW = (message: string) => `
name: console-deploy
namespace: production
description: Deploys a version
inputs:
  version: { type: string, required: true }
tasks:
  - { name: say, type: util.log, properties: { message: "${message} {{ inputs.version }}" } }
`;

const fx = consoleServer(async (server) => {
  await createProject(server, 'sched/app', { owners: ['owner@acme.io'] });
  await createProject(server, 'acme/prod', { owners: ['owner@acme.io'], namespace: 'production' });
});

test('the catalogue lists flows with their parameters, and schedules with their state', async () => {
  const owner = await fx.signedIn(fx.people.owner);
  const r = await owner.page('/console/flows');
  expect(r.status).toBe(200);
  expect(r.html).toContain('data-flow="gated-quorum"');
  expect(textOf(r.html)).toContain('target*, timeoutHours');
  expect(r.html).toContain('data-schedule="ticker-every-2s"');
  expect(textOf(r.html)).toContain('*/2 * * * * * UTC');
  expect(textOf(r.html)).toContain('paused Resume ticker-every-2s');
});

test('an owner pauses and resumes a schedule; the next fire time appears and goes', async () => {
  const owner = await fx.signedIn(fx.people.owner);
  await owner.page('/console/flows');
  const resumed = await owner.post('/console/schedules/ticker-every-2s/resume', {});
  expect(resumed.status).toBe(303);
  const view = (await fx.server.call('GET', '/api/v1/schedules/ticker-every-2s')).body;
  expect(view).toMatchObject({ enabled: true });
  expect(view.nextFireAt).toEqual(expect.any(String));
  const page = await owner.page('/console/flows');
  expect(textOf(page.html)).toContain('active Pause ticker-every-2s');
  expect((await owner.post('/console/schedules/ticker-every-2s/pause', {})).status).toBe(303);
  expect((await fx.server.call('GET', '/api/v1/schedules/ticker-every-2s')).body).toMatchObject({ enabled: false, nextFireAt: null });
});

test('a member sees no schedule buttons and is refused if it posts anyway', async () => {
  const dev = await fx.signedIn(fx.people.dev);
  const page = await dev.page('/console/flows');
  expect(page.html).not.toContain('/console/schedules/');
  const r = await dev.post('/console/schedules/ticker-every-2s/resume', {});
  expect(r.status).toBe(403);
  expect((await fx.server.call('GET', '/api/v1/schedules/ticker-every-2s')).body.enabled).toBe(false);
});

test('the start form types its fields, applies defaults for empty ones, and starts a run as the viewer', async () => {
  const dev = await fx.signedIn(fx.people.dev);
  const form = await dev.page('/console/flows/gated-quorum');
  expect(form.html).toContain('<label for="p-target">target (required)</label>');
  expect(form.html).toContain('name="param.timeoutHours"');
  const bad = await dev.post('/console/flows/gated-quorum/run', { project: 'acme/app', 'param.target': 'http://127.0.0.1:9', 'param.timeoutHours': 'soon' });
  expect(bad.status).toBe(400);
  expect(textOf(bad.html)).toMatch(/timeoutHours ?: must be a number, got "soon"/);
  // What was typed is kept.
  expect(bad.html).toContain('value="http://127.0.0.1:9"');

  const started = await dev.post('/console/flows/ten-steps/run', { project: 'acme/app' });
  expect(started.status).toBe(303);
  const runId = /\/console\/runs\/([0-9a-f-]{36})$/.exec(started.headers.get('location')!)![1];
  const run = await waitForRun(fx.server, runId);
  expect(run).toMatchObject({ status: 'Completed', triggeredBy: 'dev@acme.io', repositoryIdentifier: 'acme/app' });
});

test('a missing required parameter is named; a project outside the viewer is refused; a viewer cannot start', async () => {
  const devApp = await fx.signedIn(fx.people.devApp);
  await devApp.page('/console/flows/gated-quorum');
  const missing = await devApp.post('/console/flows/gated-quorum/run', { project: 'acme/app' });
  expect(missing.status).toBe(400);
  expect(textOf(missing.html)).toContain('target');
  const outside = await devApp.post('/console/flows/ten-steps/run', { project: 'acme/other' });
  expect(outside.status).toBe(403);
  const viewer = await fx.signedIn(fx.people.viewer);
  const page = await viewer.page('/console/flows/ten-steps');
  expect(page.html).not.toContain('/run"');
  expect(textOf(page.html)).toContain('Your role may look at flows but not start them');
  expect((await viewer.post('/console/flows/ten-steps/run', { project: 'acme/app' })).status).toBe(403);
});

test('flow documents are listed with their revisions, and an old revision can be read', async () => {
  const created = await fx.server.call('POST', '/api/v1/flows', { yamlContent: FLOW('deploying') });
  expect(created.status).toBe(201);
  const id = created.body.id;
  const updated = await fx.server.call('PUT', `/api/v1/flows/${id}`, { yamlContent: FLOW('shipping') });
  expect(updated.status).toBe(200);
  const owner = await fx.signedIn(fx.people.owner);
  const list = await owner.page('/console/flows');
  expect(list.html).toContain(`href="/console/flows/documents/${id}"`);
  const doc = await owner.page(`/console/flows/documents/${id}`);
  expect(textOf(doc.html)).toContain('Revision 2 (current)');
  expect(doc.html).toContain('shipping');
  const first = await owner.page(`/console/flows/documents/${id}?revision=1`);
  expect(first.html).toContain('deploying {{ inputs.version }}');
  expect((await owner.get(`/console/flows/documents/${id}?revision=99`)).status).toBe(404);
  // Not a project of this token: not found.
  const devApp = await fx.signedIn(fx.people.devApp);
  expect((await devApp.get(`/console/flows/documents/${id}`)).status).toBe(404);
});
