import { ConsoleClient, consoleServer, textOf } from '../support/console.js';
import { eventually, waitForRun } from '../support/server.js';

const fx = consoleServer();

/** Starts `gated-log` as `dev` (so dev is the requester) and returns the run and its approval id. */
async function gatedRun(): Promise<{ runId: string; approvalId: string }> {
  const r = await fx.server.call('POST', '/sfp/api/flows/run', { payload: { id: 'gated-log', repositoryIdentifier: 'acme/app' } }, fx.people.dev);
  expect(r.status).toBe(201);
  const approval = await eventually(async () => {
    const a = await fx.server.call('GET', `/sfp/api/flows/approvals/${r.body.id}`);
    return a.status === 200 ? a.body : undefined;
  });
  return { runId: r.body.id, approvalId: approval.id };
}

test('a page without a session sends the browser to sign in, keeping where it was going', async () => {
  const c = new ConsoleClient(fx.server.url);
  const r = await c.get('/console/runs?status=failed');
  expect(r.status).toBe(303);
  expect(r.headers.get('location')).toBe('/console/login?next=%2Fconsole%2Fruns%3Fstatus%3Dfailed');
  const htmx = await c.get('/console', { 'HX-Request': 'true' });
  expect(htmx.status).toBe(401);
  expect(htmx.headers.get('hx-redirect')).toBe('/console/login?next=%2Fconsole');
});

test('the sign-in page offers password and token sign-in, with a CSRF cookie and strict headers', async () => {
  const c = new ConsoleClient(fx.server.url);
  const r = await c.page('/console/login');
  expect(r.status).toBe(200);
  expect(r.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(r.headers.get('x-frame-options')).toBe('DENY');
  expect(r.html).toContain('action="/console/login/password"');
  expect(r.html).toContain('action="/console/login/token"');
  expect(r.html).toContain('<label for="token">Token</label>');
  expect(c.cookie('fg_login_csrf')).toBe(c.csrf);
});

test('signing in with a token: a bad token is refused in words; a good one opens an HttpOnly session cookie and the inbox', async () => {
  const c = new ConsoleClient(fx.server.url);
  await c.page('/console/login');
  const bad = await c.post('/console/login/token', { token: 'fg_not-a-real-token' });
  expect(bad.status).toBe(401);
  expect(textOf(bad.html)).toContain('That token is unknown, revoked, expired');
  const good = await c.post('/console/login/token', { token: fx.people.owner, next: '/console/runs' });
  expect(good.status).toBe(303);
  expect(good.headers.get('location')).toBe('/console/runs');
  const setCookie = good.headers.getSetCookie().find((x) => x.startsWith('fg_session='))!;
  expect(setCookie).toMatch(/httponly/i);
  expect(setCookie).toMatch(/samesite=lax/i);
  expect(setCookie).toMatch(/path=\/console/i);
  const inbox = await c.page('/console');
  expect(inbox.status).toBe(200);
  expect(textOf(inbox.html)).toContain('Signed in as owner@acme.io');
});

test('a sign-in form without its CSRF cookie, or posted from another site, is refused with 403', async () => {
  const fresh = new ConsoleClient(fx.server.url);
  const noCookie = await fresh.post('/console/login/token', { token: fx.people.owner, _csrf: 'x'.repeat(32) });
  expect(noCookie.status).toBe(403);
  const c = new ConsoleClient(fx.server.url);
  await c.page('/console/login');
  const foreign = await c.post('/console/login/token', { token: fx.people.owner }, { origin: 'https://evil.example' });
  expect(foreign.status).toBe(403);
  expect(textOf(foreign.html)).toContain('This form was sent from https://evil.example');
});

test('a next address outside the console is ignored after sign-in', async () => {
  const c = new ConsoleClient(fx.server.url);
  await c.page('/console/login');
  const r = await c.post('/console/login/token', { token: fx.people.owner, next: 'https://evil.example/phish' });
  expect(r.headers.get('location')).toBe('/console');
  const c2 = new ConsoleClient(fx.server.url);
  await c2.page('/console/login');
  expect((await c2.post('/console/login/token', { token: fx.people.owner, next: '//evil.example' })).headers.get('location')).toBe('/console');
});

test('the inbox shows an approval waiting on an owner with its context; the requester sees it without buttons, and why', async () => {
  const { runId, approvalId } = await gatedRun();
  const owner = await fx.signedIn(fx.people.owner);
  const page = await owner.page('/console');
  const card = page.html.slice(page.html.indexOf(`id="approval-${approvalId}"`));
  const text = textOf(card.slice(0, card.indexOf('</article>')));
  expect(text).toContain('gated-log');
  expect(text).toContain('Requested by dev@acme.io');
  expect(text).toContain('Project acme/app');
  expect(text).toContain('0 of 1 approvals');
  expect(text).toContain('Still able to approve owner@acme.io, second@acme.io');
  expect(card).toContain(`href="/console/runs/${runId}"`);
  expect(card).toContain(`action="/console/approvals/${approvalId}/decision"`);
  expect(textOf(page.html)).toMatch(/Waiting on you \(\d+\)/);

  const dev = await fx.signedIn(fx.people.dev);
  const devPage = await dev.page(`/console/approvals/${approvalId}`);
  expect(devPage.status).toBe(200);
  expect(devPage.html).not.toContain('/decision"');
  expect(textOf(devPage.html)).toContain('You cannot decide this: dev@acme.io is not an owner of acme/app, and only owners may decide this request');
});

test('a person of no project sees neither the approval nor its page (404)', async () => {
  const { approvalId } = await gatedRun();
  const pager = await fx.server.call('POST', '/api/v1/tokens', { name: 'pager', role: 'member', email: 'pager@acme.io', projects: ['acme/paging'] });
  const other = await fx.signedIn(pager.body.token);
  const inbox = await other.page('/console');
  expect(inbox.html).not.toContain(approvalId);
  const r = await other.get(`/console/approvals/${approvalId}`);
  expect(r.status).toBe(404);
});

test('approving in the console decides through the core (door web): the run completes and the audit names the door', async () => {
  const { runId, approvalId } = await gatedRun();
  const owner = await fx.signedIn(fx.people.owner);
  await owner.page(`/console/approvals/${approvalId}`);
  const r = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve' });
  expect(r.status).toBe(303);
  expect(r.headers.get('location')).toBe(`/console/approvals/${approvalId}`);
  expect((await waitForRun(fx.server, runId)).status).toBe('Completed');
  const approval = (await fx.server.call('GET', `/sfp/api/flows/approvals/${runId}`)).body;
  expect(approval).toMatchObject({ status: 'approved', decisions: [expect.objectContaining({ email: 'owner@acme.io', door: 'web', verdict: 'approve' })] });
  const after = await owner.page(`/console/approvals/${approvalId}`);
  expect(textOf(after.html)).toContain('You cannot decide this: This request is already approved');
  // A late click gets the card as it stands now, with why (409), not an error page.
  const late = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve' });
  expect(late.status).toBe(409);
  expect(textOf(late.html)).toContain('Approval request already approved');
});

test('rejecting needs a reason; with one, the run fails with it', async () => {
  const { runId, approvalId } = await gatedRun();
  const owner = await fx.signedIn(fx.people.owner);
  await owner.page(`/console/approvals/${approvalId}`);
  const noReason = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'reject', reason: ' ' });
  expect(noReason.status).toBe(400);
  expect(textOf(noReason.html)).toContain('reason: say why you reject it');
  const r = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'reject', reason: 'not during the freeze' });
  expect(r.status).toBe(303);
  const run = await waitForRun(fx.server, runId);
  expect(run.status).toBe('Failed');
  expect((await fx.server.call('GET', `/sfp/api/flows/approvals/${runId}`)).body).toMatchObject({ status: 'rejected', reason: 'not during the freeze' });
});

test('a decision posted without the CSRF token, or from another origin, is refused (403) and decides nothing', async () => {
  const { runId, approvalId } = await gatedRun();
  const owner = await fx.signedIn(fx.people.owner);
  const noToken = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve', _csrf: '' });
  expect(noToken.status).toBe(403);
  expect(textOf(noToken.html)).toContain('no valid CSRF token');
  const foreign = await owner.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve' }, { origin: 'https://evil.example' });
  expect(foreign.status).toBe(403);
  expect((await fx.server.call('GET', `/sfp/api/flows/approvals/${runId}`)).body.status).toBe('pending');
});

test('the requester deciding their own request over htmx gets the card back with the refusal; nothing is decided', async () => {
  const { runId, approvalId } = await gatedRun();
  await fx.server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io', 'second@acme.io', 'dev@acme.io'], members: [] });
  try {
    const dev = await fx.signedIn(fx.people.dev);
    await dev.page(`/console/approvals/${approvalId}`);
    const r = await dev.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve' }, { 'HX-Request': 'true', 'x-csrf-token': dev.csrf! });
    expect(r.status).toBe(200);
    expect(r.html.startsWith('<article')).toBe(true);
    expect(textOf(r.html)).toContain('dev@acme.io requested this and may not approve their own request');
    expect((await fx.server.call('GET', `/sfp/api/flows/approvals/${runId}`)).body.status).toBe('pending');
  } finally {
    await fx.server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'] });
  }
});

test('a token without an email may look but not decide', async () => {
  const { approvalId } = await gatedRun();
  const viewer = await fx.signedIn(fx.people.viewer);
  const r = await viewer.page(`/console/approvals/${approvalId}`);
  expect(r.status).toBe(200);
  expect(r.html).not.toContain('/decision"');
  expect(textOf(r.html)).toContain('Token "dashboard" has no email, so it cannot decide approvals');
});

test('signing out ends the session on the server: the old cookie no longer works', async () => {
  const c = await fx.signedIn(fx.people.owner);
  const cookie = c.cookie('fg_session')!;
  const out = await c.post('/console/logout', {});
  expect(out.status).toBe(303);
  const replay = await fetch(`${fx.server.url}/console`, { headers: { cookie: `fg_session=${cookie}` }, redirect: 'manual' });
  expect(replay.status).toBe(303);
});

test('revoking the token ends its console sessions at once', async () => {
  const created = await fx.server.call('POST', '/api/v1/tokens', { name: 'short-lived', role: 'member', email: 'owner@acme.io' });
  const c = await fx.signedIn(created.body.token);
  expect((await c.get('/console')).status).toBe(200);
  await fx.server.call('DELETE', `/api/v1/tokens/${created.body.id}`);
  expect((await c.get('/console')).status).toBe(303);
});

test('a one-time sign-in link: GET only shows whose it is; the POST spends it once and opens a person session', async () => {
  const { approvalId } = await gatedRun();
  const { secret } = await fx.server.services.loginLinks.issue('owner@acme.io', 'slack');
  const c = new ConsoleClient(fx.server.url);
  // Fetched twice (an unfurler, then the person): still usable.
  await c.get(`/console/login/link/${secret}`);
  const confirm = await c.page(`/console/login/link/${secret}`);
  expect(confirm.status).toBe(200);
  expect(textOf(confirm.html)).toContain('Continue as owner@acme.io');
  const spent = await c.post('/console/login/link', { link: secret });
  expect(spent.status).toBe(303);
  const inbox = await c.page('/console');
  expect(inbox.html).toContain(`id="approval-${approvalId}"`);
  expect(inbox.html).toContain(`action="/console/approvals/${approvalId}/decision"`);
  const again = new ConsoleClient(fx.server.url);
  expect((await again.get(`/console/login/link/${secret}`)).status).toBe(410);
  await again.page('/console/login');
  expect((await again.post('/console/login/link', { link: secret })).status).toBe(410);
});
