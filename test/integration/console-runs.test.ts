import { consoleServer, textOf } from '../support/console.js';
import { startRun, waitForRun } from '../support/server.js';

const fx = consoleServer();

const runIdsOf = (html: string) => [...html.matchAll(/data-run="([^"]+)"/g)].map((m) => m[1]);

test('the runs list filters by status, flow, project, requester and door, all kept in the URL', async () => {
  const sleeping = await startRun(fx.server, 'sleeper');
  const other = await startRun(fx.server, 'sleeper', { repositoryIdentifier: 'acme/other' });
  const done = await startRun(fx.server, 'ten-steps');
  await waitForRun(fx.server, done);
  const owner = await fx.signedIn(fx.people.owner);

  const all = runIdsOf((await owner.page('/console/runs')).html);
  expect(all).toEqual(expect.arrayContaining([sleeping, other, done]));

  const completed = await owner.page('/console/runs?status=completed&flow=ten-steps');
  expect(runIdsOf(completed.html)).toContain(done);
  expect(runIdsOf(completed.html)).not.toContain(sleeping);
  // The filter form shows what is applied.
  expect(completed.html).toContain('<option value="completed" selected>completed</option>');
  expect(completed.html).toContain('<option value="ten-steps" selected>ten-steps</option>');

  const byProject = runIdsOf((await owner.page('/console/runs?project=acme/other')).html);
  expect(byProject).toEqual([other]);
  const byRequester = runIdsOf((await owner.page('/console/runs?requester=nobody@acme.io')).html);
  expect(byRequester).toEqual([]);
  const byDoor = runIdsOf((await owner.page('/console/runs?door=slack')).html);
  expect(byDoor).toEqual([]);
  expect(runIdsOf((await owner.page('/console/runs?door=rest&project=acme/other')).html)).toEqual([other]);
  const today = new Date().toISOString().slice(0, 10);
  expect(runIdsOf((await owner.page(`/console/runs?since=${today}&until=${today}&project=acme/other`)).html)).toEqual([other]);
  expect(runIdsOf((await owner.page('/console/runs?until=2000-01-01')).html)).toEqual([]);
  await fx.server.call('DELETE', `/sfp/api/flows/${sleeping}`);
  await fx.server.call('DELETE', `/sfp/api/flows/${other}`);
});

test('a bad filter is a 400 page naming the field', async () => {
  const owner = await fx.signedIn(fx.people.owner);
  const r = await owner.get('/console/runs?status=sleeping');
  expect(r.status).toBe(400);
  expect(textOf(r.html)).toContain('status.0: status must be one of queued');
  const d = await owner.get('/console/runs?since=yesterday');
  expect(d.status).toBe(400);
  expect(textOf(d.html)).toContain('since: use YYYY-MM-DD');
});

test('a scoped token sees only its projects, even when it asks for another', async () => {
  const other = await startRun(fx.server, 'ten-steps', { repositoryIdentifier: 'acme/other' });
  const mine = await startRun(fx.server, 'ten-steps');
  const dev = await fx.signedIn(fx.people.devApp);
  const list = runIdsOf((await dev.page('/console/runs')).html);
  expect(list).toContain(mine);
  expect(list).not.toContain(other);
  expect(runIdsOf((await dev.page('/console/runs?project=acme/other')).html)).toEqual([]);
});

test('pages go on with "Older runs" without repeating a run', async () => {
  for (let i = 0; i < 55; i++) await startRun(fx.server, 'ten-steps', { repositoryIdentifier: 'acme/paging' });
  const owner = await fx.signedIn(fx.people.owner);
  const first = await owner.page('/console/runs?project=acme/paging');
  const firstIds = runIdsOf(first.html);
  expect(firstIds).toHaveLength(50);
  const older = /href="(\/console\/runs\?[^"]*before=[^"]+)" rel="next"/.exec(first.html)![1].replace(/&amp;/g, '&');
  const second = runIdsOf((await owner.page(older)).html);
  expect(second).toHaveLength(5);
  expect(second.filter((id) => firstIds.includes(id))).toEqual([]);
});

test('bulk cancel asks first, then cancels each run it may and says why not for the others', async () => {
  const a = await startRun(fx.server, 'sleeper');
  const b = await startRun(fx.server, 'sleeper');
  const dev = await fx.signedIn(fx.people.dev);
  const confirm = await dev.post('/console/runs/bulk', { action: 'cancel', run: a });
  expect(confirm.status).toBe(200);
  expect(textOf(confirm.html)).toContain('Cancel 1 run?');
  // Nothing happened yet.
  expect((await fx.server.call('GET', `/sfp/api/flows/${a}`)).body.status).not.toBe('Cancelled');

  const body = new URLSearchParams([['_csrf', dev.csrf!], ['action', 'cancel'], ['confirmed', 'yes'], ['run', a], ['run', b]]);
  const res = await fetch(`${fx.server.url}/console/runs/bulk`, {
    method: 'POST', redirect: 'manual', body: body.toString(),
    headers: { cookie: `fg_session=${dev.cookie('fg_session')}`, 'content-type': 'application/x-www-form-urlencoded' },
  });
  const html = await res.text();
  expect(res.status).toBe(200);
  expect(textOf(html)).toContain('Cancel: 2 of 2 done');
  expect((await waitForRun(fx.server, a)).status).toBe('Cancelled');
  expect((await waitForRun(fx.server, b)).status).toBe('Cancelled');

  // A viewer may only read: each run says so.
  const c = await startRun(fx.server, 'sleeper');
  const viewer = await fx.signedIn(fx.people.viewer);
  await viewer.page('/console/runs');
  const refused = await viewer.post('/console/runs/bulk', { action: 'cancel', run: c, confirmed: 'yes' });
  expect(textOf(refused.html)).toContain('Cancel: 0 of 1 done');
  expect(textOf(refused.html)).toContain('Token "dashboard" may only read');
  await fx.server.call('DELETE', `/sfp/api/flows/${c}`);
});

test('bulk rerun starts a new run of each ended run and links it', async () => {
  const done = await startRun(fx.server, 'ten-steps');
  await waitForRun(fx.server, done);
  const owner = await fx.signedIn(fx.people.owner);
  await owner.page('/console/runs');
  const r = await owner.post('/console/runs/bulk', { action: 'rerun', run: done });
  expect(textOf(r.html)).toContain('Rerun: 1 of 1 done');
  const newId = /rerun as ([0-9a-f-]{36})/.exec(textOf(r.html))![1];
  expect((await waitForRun(fx.server, newId)).status).toBe('Completed');
  const missing = await owner.post('/console/runs/bulk', { action: 'rerun', run: '01890000-0000-7000-8000-000000000000' });
  expect(textOf(missing.html)).toContain('Run 01890000-0000-7000-8000-000000000000 not found');
});

test('bulk actions without a selection, or without CSRF, are refused', async () => {
  const owner = await fx.signedIn(fx.people.owner);
  await owner.page('/console/runs');
  const none = await owner.post('/console/runs/bulk', { action: 'cancel' });
  expect(none.status).toBe(400);
  expect(textOf(none.html)).toContain('select at least one run');
  const noCsrf = await owner.post('/console/runs/bulk', { action: 'rerun', run: '01890000-0000-7000-8000-000000000000', _csrf: '' });
  expect(noCsrf.status).toBe(403);
});
