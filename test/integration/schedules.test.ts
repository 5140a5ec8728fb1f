import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const FLOWS = '/sfp/api/flows';
const NAME = 'ticker-every-2s';

beforeAll(async () => {
  server = await startTestServer({ env: { FLOWGATE_SCHEDULER_POLL_MS: '300' } });
  await createProject(server, 'sched/app');
});
afterAll(async () => { await server?.stop(); });

const scheduled = async () => (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=sched/app&includeScheduled=true&limit=100`)).body.runs.filter((r: any) => r.triggeredBy === 'cron');
const schedule = async (name = NAME) => (await server.call('GET', `${FLOWS}/schedules?repositoryIdentifier=sched/app`)).body.schedules.find((s: any) => s.name === name);

test('a manifest schedule is listed, shipped paused, and fires once resumed', async () => {
  const listed = await schedule();
  expect(listed).toMatchObject({ name: NAME, workflowName: 'ticker', expression: '*/2 * * * * *', enabled: false, nextFireAt: null, lastRun: null, repositoryIdentifier: 'sched/app', source: 'manifest', payload: { note: 'scheduled tick' } });
  const resumed = await server.call('POST', `${FLOWS}/schedules/${NAME}/resume`);
  expect(resumed.body).toMatchObject({ name: NAME, enabled: true });
  expect(Date.parse(resumed.body.nextFireAt) - Date.now()).toBeLessThanOrEqual(2100);

  const runs = await eventually(async () => { const r = await scheduled(); return r.length >= 2 ? r : undefined; }, 30_000, 'two scheduled runs');
  expect(runs[0]).toMatchObject({ triggeredBy: 'cron', schedulePath: NAME, taskType: 'ticker' });
  const detail = (await server.call('GET', `${FLOWS}/${runs[0].id}`)).body;
  expect(detail.payload).toEqual({ id: 'ticker', note: 'scheduled tick' });
  // Scheduled runs are left out of listings unless asked for.
  const plain = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=sched/app`)).body.runs;
  expect(plain.filter((r: any) => r.triggeredBy === 'cron')).toHaveLength(0);
  const after = await schedule();
  expect(after.lastRun).toMatchObject({ id: expect.any(String) });
  expect(after.lastFiredAt).not.toBeNull();
});

test('a paused schedule does not fire; resume makes it fire again', async () => {
  await server.call('POST', `${FLOWS}/schedules/${NAME}/pause`);
  await new Promise((r) => setTimeout(r, 1500)); // a firing already under way may still land
  const before = (await scheduled()).length;
  await new Promise((r) => setTimeout(r, 4500));
  expect((await scheduled()).length).toBe(before);
  expect((await schedule()).enabled).toBe(false);
  await server.call('POST', `${FLOWS}/schedules/${NAME}/resume`);
  await eventually(async () => ((await scheduled()).length > before ? true : undefined), 30_000, 'a firing after resume');
  await server.call('POST', `${FLOWS}/schedules/${NAME}/pause`);
});

test('PATCH changes the expression and keeps the input; invalid expressions are explained', async () => {
  const bad = await server.call('PATCH', `${FLOWS}/schedules/${NAME}`, { workflowName: 'ticker', expression: '61 * * * *' });
  expect(bad.status).toBe(400);
  expect(bad.body.message[0]).toMatch(/^expression: .*61.*0-59/);
  const short = await server.call('PATCH', `${FLOWS}/schedules/${NAME}`, { workflowName: 'ticker', expression: '* * *' });
  expect(short.body.message).toEqual(['expression: expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; got 3']);
  const wrongFlow = await server.call('PATCH', `${FLOWS}/schedules/${NAME}`, { workflowName: 'other', expression: '0 * * * *' });
  expect(wrongFlow.body.message).toEqual(['workflowName: must be ticker']);
  expect((await server.call('PATCH', `${FLOWS}/schedules/nope`, { workflowName: 'ticker', expression: '0 * * * *' })).status).toBe(404);
  const ok = await server.call('PATCH', `${FLOWS}/schedules/${NAME}`, { workflowName: 'ticker', expression: '0 9 * * MON-FRI' });
  expect(ok.status).toBe(200);
  expect(ok.body).toMatchObject({ expression: '0 9 * * MON-FRI', payload: { note: 'scheduled tick' }, enabled: false });
  expect((await server.call('POST', `${FLOWS}/schedules/nope/pause`)).status).toBe(404);
});

test('projects add and delete their own schedules; manifest schedules cannot be deleted', async () => {
  const body = { name: 'nightly-ticker', flowType: 'ticker', cron: '0 2 * * *', timezone: 'Europe/Paris', repositoryIdentifier: 'sched/app', payload: { note: 'nightly' } };
  const created = await server.call('POST', '/api/v1/schedules', body);
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ name: 'nightly-ticker', timezone: 'Europe/Paris', enabled: true, source: 'api' });
  const next = new Date(created.body.nextFireAt);
  expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(next)).toBe('02:00');
  expect((await server.call('POST', '/api/v1/schedules', body)).status).toBe(409);
  expect((await server.call('POST', '/api/v1/schedules', { ...body, name: 'x1', cron: 'every day' })).body.details[0].field).toBe('cron');
  expect((await server.call('POST', '/api/v1/schedules', { ...body, name: 'x2', timezone: 'Mars/Olympus' })).body.details[0].field).toBe('timezone');
  expect((await server.call('POST', '/api/v1/schedules', { ...body, name: 'x3', flowType: 'nope' })).body.details[0].field).toBe('flowType');
  expect((await server.call('POST', '/api/v1/schedules', { ...body, name: 'x4', repositoryIdentifier: 'sched/none' })).body.details[0].field).toBe('repositoryIdentifier');
  expect((await server.call('DELETE', `/api/v1/schedules/${NAME}`)).status).toBe(400);
  expect((await server.call('DELETE', '/api/v1/schedules/nightly-ticker')).status).toBe(204);
  expect(await schedule('nightly-ticker')).toBeUndefined();
});

test('roles: members list, only owners change; schedules are audited', async () => {
  const member = await createToken(server, { name: 'member', role: 'member' });
  const app = await createToken(server, { name: 'app', role: 'application' });
  expect((await server.call('GET', `${FLOWS}/schedules`, undefined, member)).status).toBe(200);
  expect((await server.call('GET', `${FLOWS}/schedules`, undefined, app)).status).toBe(403);
  expect((await server.call('POST', `${FLOWS}/schedules/${NAME}/resume`, undefined, member)).status).toBe(403);
  const audit = await server.services.audit.list({ targetType: 'schedule', targetId: NAME });
  expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['schedule.paused', 'schedule.resumed', 'schedule.updated']));
});

describe('GET /api/v1/schedules', () => {
  let triggerName: string;
  let namespace: string;
  let scoped: string;

  beforeAll(async () => {
    await createProject(server, 'sched/other');
    const weekly = { name: 'weekly-ticker', flowType: 'ticker', cron: '0 6 * * 1', timezone: 'Europe/Paris', repositoryIdentifier: 'sched/app', payload: { note: 'weekly' } };
    expect((await server.call('POST', '/api/v1/schedules', weekly)).status).toBe(201);
    expect((await server.call('POST', '/api/v1/schedules', { ...weekly, name: 'other-ticker', repositoryIdentifier: 'sched/other' })).status).toBe(201);
    // A cron trigger of a flow document: its schedule is `trigger-<id>`, in the document's project.
    namespace = (await server.call('GET', '/api/v1/projects/sched/app')).body.namespace;
    const flow = await server.call('POST', '/api/v1/flows', { yamlContent: `name: doc-tick\nnamespace: ${namespace}\ntasks:\n  - { name: say, type: util.log, properties: { message: tick } }\n` });
    expect(flow.status).toBe(201);
    const trigger = await server.call('POST', '/api/v1/triggers', { flowId: flow.body.id, type: 'cron', name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin' });
    expect(trigger.status).toBe(201);
    triggerName = `trigger-${trigger.body.id}`;
    scoped = await createToken(server, { name: 'other-member', role: 'member', projects: ['sched/other'] });
  });

  test('lists project, manifest and cron-trigger schedules, by name, as the service presents them', async () => {
    const r = await server.call('GET', '/api/v1/schedules');
    expect(r.status).toBe(200);
    const names = r.body.schedules.map((x: any) => x.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining([NAME, 'weekly-ticker', 'other-ticker', triggerName]));
    const weekly = r.body.schedules.find((x: any) => x.name === 'weekly-ticker');
    expect(weekly).toMatchObject({ flowType: 'ticker', repositoryIdentifier: 'sched/app', expression: '0 6 * * 1', timezone: 'Europe/Paris', enabled: true, source: 'api', lastRun: null, payload: { note: 'weekly' } });
    expect(Date.parse(weekly.nextFireAt)).toBeGreaterThan(Date.now());
    expect(r.body.schedules.find((x: any) => x.name === triggerName)).toMatchObject({ flowType: `${namespace}:doc-tick`, repositoryIdentifier: 'sched/app', expression: '0 2 * * *', timezone: 'Europe/Berlin', enabled: true, source: 'trigger' });
    const mine = (await server.call('GET', '/api/v1/schedules?repositoryIdentifier=sched/other')).body.schedules.map((x: any) => x.name);
    expect(mine).toContain('other-ticker');
    expect(mine).not.toContain('weekly-ticker');
    expect(mine).not.toContain(triggerName);
  });

  test('one schedule by name; unknown → 404', async () => {
    const r = await server.call('GET', `/api/v1/schedules/${triggerName}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: triggerName, source: 'trigger', repositoryIdentifier: 'sched/app', expression: '0 2 * * *' });
    expect((await server.call('GET', '/api/v1/schedules/weekly-ticker')).body).toMatchObject({ name: 'weekly-ticker', enabled: true });
    const missing = await server.call('GET', '/api/v1/schedules/no-such-schedule');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'not_found', error: 'Cron schedule no-such-schedule not found' });
  });

  test('a project-scoped token sees only its projects\' schedules: another project\'s is 404, filtering by it 403', async () => {
    const listed = await server.call('GET', '/api/v1/schedules', undefined, scoped);
    expect(listed.status).toBe(200);
    const names = listed.body.schedules.map((x: any) => x.name);
    expect(names).toContain('other-ticker');
    for (const hidden of ['weekly-ticker', NAME, triggerName]) expect(names).not.toContain(hidden);
    expect(listed.body.schedules.every((x: any) => x.repositoryIdentifier === null || x.repositoryIdentifier === 'sched/other')).toBe(true);
    expect((await server.call('GET', '/api/v1/schedules/other-ticker', undefined, scoped)).status).toBe(200);
    for (const hidden of ['weekly-ticker', triggerName]) {
      const r = await server.call('GET', `/api/v1/schedules/${hidden}`, undefined, scoped);
      expect(r.status).toBe(404);
      expect(r.body.error).toBe(`Cron schedule ${hidden} not found`);
    }
    expect((await server.call('GET', '/api/v1/schedules?repositoryIdentifier=sched/app', undefined, scoped)).status).toBe(403);
  });

  test('read roles: viewers list, applications do not, no token is 401', async () => {
    const viewer = await createToken(server, { name: 'sched-viewer', role: 'viewer' });
    const app = await createToken(server, { name: 'sched-app', role: 'application' });
    expect((await server.call('GET', '/api/v1/schedules', undefined, viewer)).status).toBe(200);
    expect((await server.call('GET', `/api/v1/schedules/${NAME}`, undefined, viewer)).status).toBe(200);
    expect((await server.call('GET', '/api/v1/schedules', undefined, app)).status).toBe(403);
    expect((await server.call('GET', '/api/v1/schedules', undefined, null)).status).toBe(401);
  });

  test('both routes are documented in /openapi.json', async () => {
    const doc = (await server.call('GET', '/openapi.json', undefined, null)).body;
    expect(Object.keys(doc.paths['/api/v1/schedules']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/schedules/{name}']).sort()).toEqual(['delete', 'get']);
    expect(doc.paths['/api/v1/schedules'].get.parameters.map((p: any) => p.name)).toEqual(['repositoryIdentifier']);
  });
});
