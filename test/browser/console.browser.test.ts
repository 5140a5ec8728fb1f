import type { Browser, Page } from 'playwright-core';
import { commentPayload, deliver, type FakeComment } from '../fakes/github.js';
import { SlackSender } from '../fakes/slack.js';
import { DOOR_SECRETS, startWithAllDoors, type AllDoors } from '../support/all-doors.js';
import { createProject, createToken, eventually, waitForRun } from '../support/server.js';
import { launchChromium, screenshot, seriousViolations } from './browser.js';

// The console in Debian's Chromium: a person signs in with a one-time link from the Slack bot, approves a request
// raised from a GitHub comment, and the GitHub thread and the run follow.
let doors: AllDoors;
let browser: Browser;

beforeAll(async () => {
  doors = await startWithAllDoors();
  doors.github.installations.set('acme/app', 7);
  await createProject(doors.server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  for (const [email, githubLogin] of [['owner@acme.io', 'octo-owner'], ['dev@acme.io', 'octo-dev']])
    expect((await doors.server.call('PUT', `/api/v1/identities/${email}`, { githubLogin })).status).toBe(201);
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await doors?.stop();
});

let issue = 500;

/** `/flowgate run gated-log` commented by the developer on a new issue, up to the approval comment. */
async function approvalFromGithub(): Promise<{ issueNumber: number; runId: string; approvalComment: FakeComment; approvalId: string }> {
  const issueNumber = ++issue;
  const sent = await deliver(doors.server.url, DOOR_SECRETS.github, 'issue_comment', commentPayload({ issueNumber, login: 'octo-dev', body: '/flowgate run gated-log' }));
  expect(sent.status).toBe(202);
  const approvalComment = await eventually(async () => doors.github.commentsOn('acme/app', issueNumber).find((c) => /Approval needed/.test(c.body)), 20_000, 'the approval comment');
  const runId = /`([0-9a-f-]{36})`/.exec(approvalComment.body)![1];
  const approval = (await doors.server.call('GET', `/sfp/api/flows/approvals/${runId}`)).body;
  return { issueNumber, runId, approvalComment, approvalId: approval.id };
}

/** `/flowgate login` in Slack, then the link from the bot's DM opened in a fresh browser context and confirmed. */
async function signInWithLink(email: string): Promise<Page> {
  const user = `U0${email.split('@')[0].replace(/\W/g, '').toUpperCase()}`;
  doors.slack.user(user, email);
  const isLink = (b: Record<string, any>) => b.channel === doors.slack.dmOf(user) && /sign-in link/.test(b.text);
  const before = doors.slack.to('chat.postMessage', isLink).length;
  expect((await new SlackSender(doors.server.url, DOOR_SECRETS.slack).command('login', { user, channel: 'C0OPS' })).status).toBe(200);
  const dm = await eventually(async () => doors.slack.to('chat.postMessage', isLink)[before], 20_000, 'the sign-in link DM');
  // The link is on FLOWGATE_PUBLIC_URL; this test server listens on a port it chose, so the path is opened there.
  const url = doors.server.url + new URL(/<(http[^|>]+)\|/.exec(dm.body.text)![1]).pathname;
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.getByRole('button', { name: `Continue as ${email}` }).click();
  await page.waitForURL(`${doors.server.url}/console`);
  return page;
}

async function expectAccessible(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  const violations = await seriousViolations(page);
  expect(violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

test('an owner signs in with a link, approves a request raised on GitHub; the comment is edited and the run completes', async () => {
  const { runId, approvalComment, approvalId } = await approvalFromGithub();
  const page = await signInWithLink('owner@acme.io');
  const card = page.locator(`#approval-${approvalId}`);
  await expect(card.getByText('Requested by')).toBeDefined();
  expect(await card.textContent()).toContain(`acme/app#${issue}`);
  await expectAccessible(page, 'inbox');

  await card.getByRole('button', { name: 'Approve' }).click();
  // htmx swaps the card in place with its new state.
  await page.locator(`#approval-${approvalId}[data-status="approved"]`).waitFor();
  expect(await page.locator(`#approval-${approvalId} .why`).textContent()).toContain('This request is already approved');

  const edited = await eventually(async () => {
    const c = doors.github.commentsOn('acme/app', approvalComment.issueNumber).find((x) => x.id === approvalComment.id);
    return c && c.edits.length > 0 && /approved/i.test(c.body) ? c : undefined;
  }, 20_000, 'the approval comment edited');
  expect(edited.body).toContain('owner@acme.io');
  expect((await waitForRun(doors.server, runId)).status).toBe('Completed');

  // The run page: the step graph, the logs, and the decision in the timeline with its door.
  await page.goto(`${doors.server.url}/console/runs/${runId}`);
  await page.locator('svg.step-graph a[data-ref="approve"]').waitFor();
  await page.locator('[data-log] li', { hasText: 'approved by' }).first().waitFor();
  expect(await page.locator('main').textContent()).toMatch(/owner@acme\.io/);
  expect(await page.locator('main').textContent()).toContain('web');
  await expectAccessible(page, 'run');
  await page.context().close();
});

test('the run page of a run with child runs follows their lines live, each naming and linking its run', async () => {
  const page = await signInWithLink('owner@acme.io');
  const started = await doors.server.call('POST', '/sfp/api/flows/run', { payload: { id: 'chatty-orchestrator', repositoryIdentifier: 'acme/app' } });
  expect(started.status).toBe(201);
  await page.goto(`${doors.server.url}/console/runs/${started.body.id}`);
  // The children write for a few seconds after the page was drawn: their lines arrive over the stream.
  await page.locator('[data-log] li', { hasText: 'left line 6' }).waitFor({ timeout: 20_000 });
  await page.locator('[data-log] li', { hasText: 'right line 6' }).waitFor();
  await page.locator('[data-live-state]', { hasText: 'The run has ended' }).waitFor({ timeout: 20_000 });
  const childLine = page.locator('[data-log] li', { hasText: 'left line 6' });
  expect(await childLine.locator('a.log-run').textContent()).toBe('chatty');
  // Each line once, though it came over a reconnecting stream that started at the page's offset.
  const texts = await page.locator('[data-log] li .message').allTextContents();
  expect(texts.filter((t) => t === 'left line 6')).toHaveLength(1);
  expect(texts.at(-1)).toMatch(/^Run completed/);
  await childLine.locator('a.log-run').click();
  await page.waitForURL(/\/console\/runs\/[0-9a-f-]+$/);
  expect(page.url()).not.toContain(started.body.id);
  await page.context().close();
});

test('a non-approver sees the request without buttons, and why', async () => {
  const { approvalId } = await approvalFromGithub();
  const page = await signInWithLink('dev@acme.io');
  const card = page.locator(`#approval-${approvalId}`);
  await card.waitFor();
  expect(await card.getByRole('button', { name: 'Approve' }).count()).toBe(0);
  expect(await card.locator('.why').textContent()).toContain('dev@acme.io is not an owner of acme/app');
  await page.context().close();
});

test('a decision made elsewhere updates the open inbox without a reload', async () => {
  const { runId, approvalId } = await approvalFromGithub();
  const page = await signInWithLink('owner@acme.io');
  await page.locator(`#approval-${approvalId}[data-status="pending"]`).waitFor();
  const owner = await createToken(doors.server, { name: 'owner-rest', role: 'owner', email: 'owner@acme.io' });
  const r = await doors.server.call('POST', `/sfp/api/flows/approvals/${runId}/approve`, { approver: 'owner', approverEmail: 'owner@acme.io' }, owner);
  expect(r.status).toBe(200);
  await page.locator(`#approval-${approvalId}[data-status="approved"]`).waitFor({ timeout: 15_000 });
  await page.context().close();
});

test('the runs and flows pages pass the accessibility check; a form post without CSRF is refused', async () => {
  const page = await signInWithLink('owner@acme.io');
  await page.goto(`${doors.server.url}/console/runs`);
  await page.locator('table').waitFor();
  await expectAccessible(page, 'runs');
  await page.goto(`${doors.server.url}/console/flows`);
  await expectAccessible(page, 'flows');
  await page.goto(`${doors.server.url}/console/flows/gated-log`);
  await expectAccessible(page, 'flow-start');
  const status = await page.evaluate(async () => (await fetch('/console/runs/bulk', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'action=rerun&run=01890000-0000-7000-8000-000000000000' })).status);
  expect(status).toBe(403);
  await page.context().close();
});

test('the sign-in page passes the accessibility check', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${doors.server.url}/console/login`);
  await expectAccessible(page, 'login');
  await context.close();
});
