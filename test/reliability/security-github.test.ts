import { deliveryStatus } from '../../src/doors/inbound.js';
import { commentKey } from '../../src/doors/github/webhook.js';
import { appKey, commentPayload, deliver, FakeGithub, type FakeComment } from '../fakes/github.js';
import { createProject, eventually, startTestServer, type TestServer } from '../support/server.js';

// The GitHub door against misuse of genuine, signed deliveries: replays, people without write
// access, logins that changed hands, hostile text, commands shown as examples. Each is refused or
// inert, leaves nothing changed, and refusals are audited.
const APP_ID = '4242';
const SECRET = 'gh-webhook-secret-0123456789';
const FLOWS = '/sfp/api/flows';
const ZWJ = '\u200D';
const key = appKey();
const github = new FakeGithub(APP_ID, key.publicKey);
let server: TestServer;

beforeAll(async () => {
  await github.start();
  github.installations.set('acme/app', 7);
  server = await startTestServer({ env: { GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_API_URL: github.url } });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'reader@acme.io'], members: ['dev@acme.io'] });
  for (const [email, githubLogin] of [['owner@acme.io', 'octo-owner'], ['dev@acme.io', 'octo-dev'], ['reader@acme.io', 'octo-reader'], ['alice@acme.io', 'octo-alice']])
    expect((await server.call('PUT', `/api/v1/identities/${email}`, { githubLogin })).status).toBe(201);
  // An organisation member (association MEMBER) whose role on the repository is read only.
  github.roles.set('acme/app:octo-reader', 'read');
});
afterAll(async () => {
  await server?.stop();
  await github.stop();
});

let issues = 500;
const nextIssue = () => ++issues;
const TARGET = 'http://127.0.0.1:9';

const posted = (issue: number, re: RegExp) =>
  eventually(async () => github.commentsOn('acme/app', issue).find((c) => re.test(c.body)), 20_000, `comment ${re} on #${issue}`);
const threadRuns = async (issue: number) => (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&workItemKey=${issue}`)).body.runs as { id: string; triggeredBy: string }[];
const runIdIn = (c: FakeComment) => /run `([0-9a-f-]{36})`/.exec(c.body)![1];
const refusals = async () => (await server.services.audit.list({ targetType: 'project', targetId: 'acme/app', limit: 1000 })).filter((a) => a.action === 'github.refused');

/** A gated run started by the developer, up to its approval comment. */
async function pendingApproval(issue: number) {
  const sent = await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target=${TARGET}` }));
  expect(sent.status).toBe(202);
  const runId = runIdIn(await posted(issue, /started `gated` run/));
  await posted(issue, /Approval needed/);
  return runId;
}

test('a captured signed comment replayed with a fresh X-GitHub-Delivery starts no second run and posts nothing', async () => {
  const issue = nextIssue();
  const payload = commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target=${TARGET}` });
  const first = await deliver(server.url, SECRET, 'issue_comment', payload);
  expect(first.body).toEqual({ accepted: 1, duplicate: 0 });
  await posted(issue, /Approval needed/);
  const commentsBefore = github.commentsOn('acme/app', issue).length;
  const reactionsBefore = github.reactionsTo(payload.comment.id).length;

  // The same signed bytes, as an attacker who saw them would send them: new delivery ids.
  for (const deliveryId of ['replayed-1', 'replayed-2']) {
    const replay = await deliver(server.url, SECRET, 'issue_comment', payload, { deliveryId });
    expect(replay).toMatchObject({ status: 202, body: { accepted: 0, duplicate: 1 } });
  }
  expect(await deliveryStatus(server.services.orm, 'github', commentKey(payload.comment.id))).toMatchObject({ status: 'done', attempts: 1 });

  // A later command in the thread is answered; by then the replays would have shown too.
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-dev', body: '/status' }));
  await posted(issue, /@octo-dev gated run/);
  expect(await threadRuns(issue)).toHaveLength(1);
  expect(github.commentsOn('acme/app', issue)).toHaveLength(commentsBefore + 1);
  expect(github.reactionsTo(payload.comment.id)).toHaveLength(reactionsBefore);
});

test('a MEMBER without write permission can neither start a flow nor approve; refused, unchanged, audited', async () => {
  const issue = nextIssue();
  const before = (await refusals()).length;
  const run = await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-reader', association: 'MEMBER', body: `/flowgate run gated target=${TARGET}` }));
  expect(run.status).toBe(202);
  const refusedRun = await posted(issue, /@octo-reader/);
  expect(refusedRun.body).toBe('@octo-reader only people with write access to acme/app can start flows here (your permission: read).');
  expect(await threadRuns(issue)).toEqual([]);

  // reader@acme.io owns the project, so only the repository permission stands in the way.
  const runId = await pendingApproval(issue);
  const vote = commentPayload({ issueNumber: issue, login: 'octo-reader', association: 'MEMBER', body: '/approve' });
  await deliver(server.url, SECRET, 'issue_comment', vote);
  await posted(issue, /@octo-reader only people with write access to acme\/app can approve or reject here \(your permission: read\)\./);
  await eventually(async () => (github.reactionsTo(vote.comment.id).includes('-1') ? true : undefined));
  expect((await server.call('GET', `${FLOWS}/approvals/${runId}`)).body).toMatchObject({ status: 'pending', decisions: [] });

  const audited = (await refusals()).slice(0, (await refusals()).length - before);
  expect(audited.map((a) => a.details?.what).sort()).toEqual(['approve or reject', 'start flows']);
  expect(audited.every((a) => a.door === 'github' && a.actor === 'github:octo-reader' && a.details?.role === 'read')).toBe(true);
});

test('when GitHub cannot say what someone may do, nothing is done (fails closed)', async () => {
  const issue = nextIssue();
  github.fail((r) => r.path.startsWith('/repos/acme/app/collaborators/octo-owner/permission'), 502);
  try {
    await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-owner', association: 'OWNER', body: `/flowgate run gated target=${TARGET}` }));
    const reply = await posted(issue, /@octo-owner/);
    expect(reply.body).toMatch(/^@octo-owner Flowgate could not check your permission on acme\/app \(.*HTTP 502.*\), so nothing was done; comment again in a minute\.$/);
    expect(await threadRuns(issue)).toEqual([]);
    expect((await refusals()).some((a) => a.actor === 'github:octo-owner' && /HTTP 502/.test(String(a.details?.error)))).toBe(true);
  } finally {
    github.heal();
  }
});

test('a login renamed and registered by someone else does not inherit the directory entry', async () => {
  const issue = nextIssue();
  // Alice comments once: her entry, linked by login, is bound to her numeric id.
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-alice', userId: 1001, body: `/flowgate run gated target=${TARGET}` }));
  await posted(issue, /@octo-alice started `gated` run/);
  // Its approval request mentions her by the login her entry links (read through the directory's cache).
  await posted(issue, /Requested by.*@octo-alice\b/);

  // Alice renames herself; someone else registers "octo-alice" (another id) and comments.
  const other = nextIssue();
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: other, login: 'octo-alice', userId: 6666, body: `/flowgate run gated target=${TARGET}` }));
  expect((await posted(other, /@octo-alice/)).body).toMatch(/^@octo-alice your GitHub account is not linked to a Flowgate identity/);
  expect(await threadRuns(other)).toEqual([]);
  expect((await server.call('GET', '/api/v1/identities/alice@acme.io')).body).toMatchObject({ githubLogin: 'octo-alice', githubUserId: 1001 });
  const audit = await server.services.audit.list({ targetType: 'identity', targetId: 'alice@acme.io' });
  expect(audit.find((a) => a.action === 'identity.github_refused')?.details).toMatchObject({ githubLogin: 'octo-alice', githubUserId: 6666, boundTo: 1001 });

  // Alice, under her new login, is still herself; the entry follows the rename.
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: other, login: 'octo-alice-2', userId: 1001, body: `/flowgate run gated target=${TARGET}` }));
  await posted(other, /@octo-alice-2 started `gated` run/);
  // The rename reached the cached login too: the new approval request mentions the new login.
  await posted(other, /Requested by.*@octo-alice-2\b/);
  expect((await threadRuns(other)).map((r) => r.triggeredBy)).toEqual(['alice@acme.io']);
  expect((await server.call('GET', '/api/v1/identities/alice@acme.io')).body).toMatchObject({ githubLogin: 'octo-alice-2', githubUserId: 1001 });
});

test('payload text cannot make the app ping teams or load images', async () => {
  const issue = nextIssue();
  const hostile = '@acme/admins ![x](http://evil/x.png)';
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target="${hostile}"` }));
  const approval = await posted(issue, /Approval needed/);
  await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target=x timeoutHours="${hostile}"` }));
  const invalid = await posted(issue, /Invalid parameters/);
  for (const body of [approval.body, invalid.body]) {
    expect(body).not.toMatch(/(^|[^\w])@acme\/admins/);
    expect(body).not.toContain('![x](');
    expect(body).not.toContain('](http');
    expect(body).toContain(`@${ZWJ}acme/admins`);
  }
  expect(approval.body).toContain(`approve the call to @${ZWJ}acme/admins !${ZWJ}[x]${ZWJ}(http:${ZWJ}//evil/x.png)`);
  // Flowgate's own mentions still work.
  expect(approval.body).toContain('@octo-owner (owner@acme.io)');
});

test('a /approve inside a fenced code block decides nothing', async () => {
  const issue = nextIssue();
  const runId = await pendingApproval(issue);
  for (const body of ['To approve, comment:\n```\n/approve\n```', '~~~\n/approve\n~~~\nthat is how']) {
    const shown = commentPayload({ issueNumber: issue, login: 'octo-owner', association: 'OWNER', body });
    const r = await deliver(server.url, SECRET, 'issue_comment', shown);
    expect(r).toMatchObject({ status: 202, body: { ignored: 'no command in the comment' } });
    expect(await deliveryStatus(server.services.orm, 'github', commentKey(shown.comment.id))).toBeNull();
  }
  expect((await server.call('GET', `${FLOWS}/approvals/${runId}`)).body).toMatchObject({ status: 'pending', decisions: [] });
});
