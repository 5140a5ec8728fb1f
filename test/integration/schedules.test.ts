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
