import { appKey, commentPayload, deliver, FakeGithub } from '../fakes/github.js';
import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { BUILTIN_FLOWS, eventually, waitForRun } from '../support/server.js';

// The GitHub door on the real server process: a collaborator asks for elevated access in an issue,
// an owner approves in the thread, access is granted and revoked, and the issue hears the result.
const TIMEOUT = 120_000;
const APP_ID = '31337';
const SECRET = 'gh-e2e-webhook-secret-0123456789';
const key = appKey();
const github = new FakeGithub(APP_ID, key.publicKey);
const accessApi = new Recorder();
let server: ServerProcess;

beforeAll(async () => {
  await github.start();
  await accessApi.start();
  github.installations.set('acme/app', 99);
  server = await startServerProcess({
    DATABASE_URL: await freshDatabaseUrl('e2e_github'),
    FLOWGATE_MANIFESTS_DIR: BUILTIN_FLOWS,
    FLOWGATE_CREDENTIAL_ACCESS_API: `${accessApi.url}/access`,
    GITHUB_APP_ID: APP_ID,
    GITHUB_PRIVATE_KEY: key.privateKey,
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: github.url,
  });
  expect((await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['lead@acme.io'], members: ['dev@acme.io'] })).status).toBe(201);
  expect((await server.call('PUT', '/api/v1/identities/dev@acme.io', { githubLogin: 'dev-gh' })).status).toBe(201);
  expect((await server.call('PUT', '/api/v1/identities/lead@acme.io', { githubLogin: 'lead-gh' })).status).toBe(201);
}, TIMEOUT);

afterAll(() => endServer(server, [() => accessApi.stop(), () => github.stop()], { exitsCleanly: true }), TIMEOUT);

const on = (issue: number, re: RegExp) =>
  eventually(async () => github.commentsOn('acme/app', issue).find((c) => re.test(c.body)), 30_000, `a comment ${re} on #${issue}`);

test('/flowgate run → 👀 → approval comment → /approve by an owner → comment edited → run completes → result comment and 🚀', async () => {
  const issue = 42;
  const command = commentPayload({
    issueNumber: issue, login: 'dev-gh', association: 'COLLABORATOR', installationId: 99,
    body: 'Need prod access for the incident.\n/flowgate run request-elevated-privileges username=dev durationMinutes=0.02 reason="incident 42"',
  });
  const sent = await deliver(server.url, SECRET, 'issue_comment', command);
  expect(sent).toMatchObject({ status: 202, body: { accepted: 1 } });
  await eventually(async () => (github.reactionsTo(command.comment.id).includes('eyes') ? true : undefined), 30_000, '👀 on the command');

  const started = await on(issue, /@dev-gh started `request-elevated-privileges` run/);
  const runId = /run `([0-9a-f-]{36})`/.exec(started.body)![1];
  const approval = await on(issue, /Approval needed/);
  expect(approval.body).toContain('> dev@acme.io requests elevated access for dev (0.02 min): incident 42');
  expect(approval.body).toContain('| Requested by | @dev-gh (dev@acme.io) |');
  expect(approval.body).toContain('| Can be approved by | @lead-gh (lead@acme.io) — the owners of acme/app (not by the requester) |');
  expect(approval.body).toContain('| Quorum | 1 approval needed — 0 so far |');
  expect(approval.body).toMatch(/\| Expires \| \d{4}-\d\d-\d\d \d\d:\d\d UTC \|/);
  expect(approval.body).toContain('- `/reject <reason>`');
  const byIssue = await server.call('GET', `/sfp/api/flows/approvals/by-github/acme/app/${issue}`);
  expect(byIssue.body).toMatchObject({ executionId: runId, status: 'pending', requestedBy: 'dev@acme.io' });
  expect(accessApi.requests).toHaveLength(0);

  const vote = await deliver(server.url, SECRET, 'issue_comment', commentPayload({ issueNumber: issue, login: 'lead-gh', association: 'MEMBER', installationId: 99, body: '/approve' }));
  expect(vote.status).toBe(202);
  await eventually(async () => (github.comments.get(approval.id)!.body.includes('✅ Approved') ? true : undefined), 30_000, 'the approval comment edited');
  expect(github.comments.get(approval.id)!.body).toMatch(/\| Outcome \| approved by @lead-gh \(lead@acme\.io\) at .* UTC \|/);

  const run = await waitForRun({ call: (m, p, b) => server.call(m, p, b) }, runId, ['Completed', 'Failed'], 60_000);
  expect(run.status).toBe('Completed');
  expect(accessApi.requests.map((r) => r.path)).toEqual(['/access/grant', '/access/revoke']);
  await on(issue, /Access granted to dev for 0\.02 minutes/);
  const result = await on(issue, /### ✅ `request-elevated-privileges` completed/);
  expect(result.body).toContain('"revoked": true');
  await eventually(async () => (github.reactionsTo(command.comment.id).includes('rocket') ? true : undefined), 30_000, '🚀 on the command');
  // One installation token served every call.
  expect(github.tokensIssued.filter((t) => t.installationId === 99)).toHaveLength(1);
}, TIMEOUT);
