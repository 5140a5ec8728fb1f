import { deliveryStatus } from '../../src/doors/inbound.js';
import { commentKey } from '../../src/doors/github/webhook.js';
import { appKey, commentPayload, deliver, FakeGithub, githubUserId, issuePayload, type FakeComment } from '../fakes/github.js';
import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The GitHub door against a fake GitHub: signed deliveries in, comments and reactions out.
const APP_ID = '4242';
const SECRET = 'gh-webhook-secret-0123456789';
const PREVIOUS = 'gh-webhook-previous-0123456789';
const FLOWS = '/sfp/api/flows';
const key = appKey();
const github = new FakeGithub(APP_ID, key.publicKey);
const target = new Recorder();
let server: TestServer;

beforeAll(async () => {
  await github.start();
  await target.start();
  github.installations.set('acme/app', 7);
  server = await startTestServer({
    env: { GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_WEBHOOK_SECRET_PREVIOUS: PREVIOUS, GITHUB_API_URL: github.url },
  });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  for (const [email, githubLogin] of [['owner@acme.io', 'octo-owner'], ['dev@acme.io', 'octo-dev'], ['mallory@acme.io', 'octo-mallory']])
    expect((await server.call('PUT', `/api/v1/identities/${email}`, { githubLogin })).status).toBe(201);
});
afterAll(async () => {
  await server?.stop();
  await github.stop();
  await target.stop();
});

let issues = 100;
const nextIssue = () => ++issues;

async function say(issueNumber: number, login: string, body: string, extra: Partial<Parameters<typeof commentPayload>[0]> = {}, opts: { deliveryId?: string } = {}) {
  const payload = commentPayload({ issueNumber, login, body, ...extra });
  const r = await deliver(server.url, SECRET, 'issue_comment', payload, opts);
  return { ...r, commentId: payload.comment.id };
}

/** Waits for a comment on the issue matching `re` and returns it. */
const posted = (issueNumber: number, re: RegExp, what = String(re)) =>
  eventually(async () => github.commentsOn('acme/app', issueNumber).find((c) => re.test(c.body)), 20_000, `comment ${what} on #${issueNumber}`);
const runIdIn = (c: FakeComment) => /run `([0-9a-f-]{36})`/.exec(c.body)![1];
const threadRuns = async (issueNumber: number) => (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&workItemKey=${issueNumber}`)).body.runs as any[];

/** `/flowgate run gated …` by the developer, up to the approval comment; returns the run id and comment ids. */
async function gatedRun(issueNumber: number, params = '', flow = 'gated') {
  const sent = await say(issueNumber, 'octo-dev', `Please:\n/flowgate run ${flow} target=${target.url}${params}`);
  expect(sent.status).toBe(202);
  const started = await posted(issueNumber, new RegExp(`started \`${flow}\` run`));
  const approval = await posted(issueNumber, /Approval needed/);
  return { runId: runIdIn(started), trigger: sent.commentId, approval };
}

test('a run command is acknowledged with 👀, runs, and asks the owners in the thread; the approval is found by issue', async () => {
  const issue = nextIssue();
  const { runId, trigger, approval } = await gatedRun(issue);
  expect(github.reactionsTo(trigger)).toContain('eyes');
  expect(approval.body).toContain('@octo-owner (owner@acme.io) — the owners of acme/app');
  expect(approval.body).toContain(`| Run | \`${runId}\` (gated) |`);
  expect(approval.body).toMatch(/- `\/approve`\n- `\/reject <reason>`/);
  const run = await server.call('GET', `${FLOWS}/${runId}`);
  expect(run.body).toMatchObject({ triggeredBy: 'dev@acme.io' });
  expect((await server.services.store.findById(runId))?.workItemRef).toMatchObject({ type: 'github-issue', key: String(issue), repository: 'acme/app' });

  const found = await server.call('GET', `${FLOWS}/approvals/by-github/acme/app/${issue}`);
  expect(found.status).toBe(200);
  expect(found.body).toMatchObject({ executionId: runId, status: 'pending', context: { callback: { type: 'github', github: { repositoryIdentifier: 'acme/app', issueNumber: issue, commentId: approval.id } } } });
});

test('/approve by an owner edits the approval comment, the run completes, the result is replied and the command gets 🚀', async () => {
  const issue = nextIssue();
  const { runId, trigger, approval } = await gatedRun(issue);
  const vote = await say(issue, 'octo-owner', 'LGTM\n/approve');
  expect(vote.status).toBe(202);
  const run = await waitForRun(server, runId, ['Completed', 'Failed']);
  expect(run.status).toBe('Completed');
  await eventually(async () => (github.comments.get(approval.id)!.body.includes('✅ Approved') ? true : undefined));
  expect(github.comments.get(approval.id)!.body).toMatch(/\| Outcome \| approved by @octo-owner \(owner@acme\.io\) at \d{4}-\d\d-\d\d \d\d:\d\d UTC \|/);
  await posted(issue, /@octo-owner approved: the run continues/);
  const result = await posted(issue, /### ✅ `gated` completed/);
  expect(result.body).toContain(`Run \`${runId}\`, started by @octo-dev (dev@acme.io), completed in`);
  await eventually(async () => (github.reactionsTo(trigger).includes('rocket') ? true : undefined));
  // The vote's reaction follows its reply, which may come after the run already ended.
  await eventually(async () => (github.reactionsTo(vote.commentId).length === 2 ? true : undefined));
  expect(github.reactionsTo(vote.commentId)).toEqual(['eyes', '+1']);
});

test('/reject with a reason rejects: the comment shows who and why, the run fails, the command gets 👎', async () => {
  const issue = nextIssue();
  const { runId, trigger, approval } = await gatedRun(issue);
  await say(issue, 'octo-owner', '/reject too risky on a Friday');
  const run = await waitForRun(server, runId, ['Failed', 'Completed']);
  expect(run.status).toBe('Failed');
  await eventually(async () => (github.comments.get(approval.id)!.body.includes('❌ Rejected') ? true : undefined));
  expect(github.comments.get(approval.id)!.body).toMatch(/rejected by @octo-owner \(owner@acme\.io\) at .* UTC: too risky on a Friday/);
  await posted(issue, /### ❌ `gated` failed/);
  await eventually(async () => (github.reactionsTo(trigger).includes('-1') ? true : undefined));
});

test('/approve by someone who is not an approver is refused in a reply; the request stays pending', async () => {
  const issue = nextIssue();
  // The flow's approvers are the project's group `gate`.
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'], approverGroups: { gate: ['owner@acme.io', 'dev@acme.io'] } });
  const { runId } = await gatedRun(issue, '', 'gated-group');
  const refused = await say(issue, 'octo-mallory', '/approve');
  const reply = await posted(issue, /@octo-mallory/);
  expect(reply.body).toBe('@octo-mallory mallory@acme.io is not an approver of this request (approvers: owner@acme.io, dev@acme.io). The request is still pending.');
  await eventually(async () => (github.reactionsTo(refused.commentId).includes('-1') ? true : undefined));
  // The requester may not approve their own request either.
  await say(issue, 'octo-dev', '/approve');
  await posted(issue, /@octo-dev dev@acme\.io requested this and may not approve their own request/);
  expect((await server.call('GET', `${FLOWS}/approvals/${runId}`)).body.status).toBe('pending');
});

test('a comment mentioning /approve mid-line, or quoting it, does nothing', async () => {
  const issue = nextIssue();
  const { runId } = await gatedRun(issue);
  const before = github.requests.length;
  for (const body of ['I think we should /approve this', '> /approve\nquoting the bot', 'Like this:\n```\n/approve\n```']) {
    const r = await say(issue, 'octo-owner', body);
    expect(r).toMatchObject({ status: 202, body: { ignored: 'no command in the comment' } });
    expect(await deliveryStatus(server.services.orm, 'github', commentKey(r.commentId))).toBeNull();
  }
  await new Promise((r) => setTimeout(r, 500));
  expect(github.requests.length).toBe(before);
  expect((await server.call('GET', `${FLOWS}/approvals/${runId}`)).body.status).toBe('pending');
});

test('someone who is not a collaborator cannot start flows; an unlinked login is told how to link it', async () => {
  const issue = nextIssue();
  await say(issue, 'octo-dev', `/flowgate run gated target=${target.url}`, { association: 'NONE' });
  const reply = await posted(issue, /only owners, members and collaborators/);
  expect(reply.body).toBe('@octo-dev only owners, members and collaborators of acme/app can start flows here (your association: none).');
  await say(issue, 'stranger', `/flowgate run gated target=${target.url}`);
  const unlinked = await posted(issue, /not linked to a Flowgate identity/);
  expect(unlinked.body).toContain('`PUT /api/v1/identities/{your email}` and the body `{"githubLogin": "stranger"}`');
  expect(await threadRuns(issue)).toEqual([]);
});

test('bad parameters and unknown flow types are explained; /flowgate help lists the commands', async () => {
  const issue = nextIssue();
  await say(issue, 'octo-dev', '/flowgate run gatd target=x');
  expect((await posted(issue, /Unknown flow type/)).body).toMatch(/Unknown flow type "gatd"\. Did you mean `gated`/);
  await say(issue, 'octo-dev', '/flowgate run gated timeoutHours=many');
  expect((await posted(issue, /Invalid parameters/)).body).toContain('timeoutHours: must be a number, got "many"');
  await say(issue, 'octo-dev', '/flowgate deploy now');
  expect((await posted(issue, /Unknown command/)).body).toBe('@octo-dev Unknown command "deploy". Comment `/flowgate help` for the commands.');
  await say(issue, 'octo-dev', '/flowgate help');
  expect((await posted(issue, /Flowgate commands/)).body).toContain('| `/reject [<approvalId>] <reason>` | reject it |');
  // A sign-in link in a public thread would let every reader in: the answer says where to get one.
  await say(issue, 'octo-dev', '/flowgate login');
  const login = (await posted(issue, /sign-in link/)).body;
  expect(login).toContain('`/flowgate login`');
  expect(login).toMatch(/\/console\/login with your Flowgate account/);
  expect(login).not.toMatch(/console\/login\/link/);
  expect(await threadRuns(issue)).toEqual([]);
});

test('/status and /cancel act on the run of the thread', async () => {
  const issue = nextIssue();
  const { runId, approval } = await gatedRun(issue);
  await say(issue, 'octo-dev', '/status');
  const status = await posted(issue, /@octo-dev gated run/);
  expect(status.body).toMatch(new RegExp(`gated run ${runId}: suspended\\. Waiting for approval [0-9a-f-]{36} \\(0 of 1\\)\\.`));
  await say(issue, 'octo-mallory', '/cancel');
  await posted(issue, /mallory@acme\.io may not cancel runs of acme\/app/);
  await say(issue, 'octo-dev', '/cancel');
  await posted(issue, new RegExp(`@octo-dev cancelled run ${runId}`));
  expect((await waitForRun(server, runId, ['Cancelled'])).status).toBe('Cancelled');
  await eventually(async () => (github.comments.get(approval.id)!.body.includes('🚫 Cancelled') ? true : undefined));
});

test('/flowgate pause, resume and retry act on the run of the thread; a retry asks again in the thread', async () => {
  const issue = nextIssue();
  const { runId, approval } = await gatedRun(issue);
  await say(issue, 'octo-mallory', '/flowgate pause');
  await posted(issue, /@octo-mallory .*mallory@acme\.io may not pause runs of acme\/app/);
  await say(issue, 'octo-dev', '/flowgate pause');
  await posted(issue, new RegExp(`@octo-dev paused gated run ${runId}: running steps finish, nothing new starts until it is resumed\\.`));
  expect((await server.call('GET', `/v1/workflow-runs/${runId}?project_id=acme/app`)).body.status).toBe('paused');
  await say(issue, 'octo-dev', '/flowgate resume');
  await posted(issue, new RegExp(`@octo-dev resumed gated run ${runId}\\.`));

  await say(issue, 'octo-owner', '/reject not yet');
  expect((await waitForRun(server, runId, ['Failed'])).status).toBe('Failed');
  await say(issue, 'octo-dev', '/flowgate retry');
  const retried = await posted(issue, /@octo-dev retrying gated run/);
  const retryId = new RegExp(`retrying gated run ${runId} as run ([0-9a-f-]{36}): its completed steps are kept, the others run again\\.`).exec(retried.body)![1];
  await eventually(async () => github.commentsOn('acme/app', issue).find((c) => c.id !== approval.id && /Approval needed/.test(c.body)), 20_000, 'a second approval request');
  await say(issue, 'octo-owner', '/approve');
  expect((await waitForRun(server, retryId)).status).toBe('Completed');
});

describe('deliveries', () => {
  test('a missing or wrong signature is refused with 401 and has no effect; the previous secret is accepted during rotation', async () => {
    const issue = nextIssue();
    const body = `/flowgate run gated target=${target.url}`;
    const payload = commentPayload({ issueNumber: issue + 1000, login: 'octo-dev', body });
    const unsigned = await deliver(server.url, SECRET, 'issue_comment', payload, { signature: null });
    expect(unsigned.status).toBe(401);
    const wrong = await deliver(server.url, 'not-the-secret-0123456789', 'issue_comment', payload);
    expect(wrong.status).toBe(401);
    const garbage = await deliver(server.url, SECRET, 'issue_comment', payload, { signature: 'sha256=abc' });
    expect(garbage.status).toBe(401);
    expect(await deliveryStatus(server.services.orm, 'github', commentKey(payload.comment.id))).toBeNull();
    expect(github.commentsOn('acme/app', issue + 1000)).toEqual([]);

    const rotated = await deliver(server.url, PREVIOUS, 'issue_comment', payload);
    expect(rotated).toMatchObject({ status: 202, body: { accepted: 1 } });
    await posted(issue + 1000, /started `gated` run/);
  });

  test('the same delivery twice starts one run', async () => {
    const issue = nextIssue();
    const payload = commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target=${target.url}` });
    const first = await deliver(server.url, SECRET, 'issue_comment', payload, { deliveryId: `dup-${issue}` });
    const second = await deliver(server.url, SECRET, 'issue_comment', payload, { deliveryId: `dup-${issue}` });
    expect(first.body).toEqual({ accepted: 1, duplicate: 0 });
    expect(second.body).toEqual({ accepted: 0, duplicate: 1 });
    await posted(issue, /Approval needed/);
    expect(await threadRuns(issue)).toHaveLength(1);
    expect(github.commentsOn('acme/app', issue).filter((c) => /started `gated`/.test(c.body))).toHaveLength(1);
  });

  test('a delivery that failed (GitHub down) is processed again when redelivered, and finds the run it started', async () => {
    const issue = nextIssue();
    github.fail((r) => r.method === 'POST' && r.path === `/repos/acme/app/issues/${issue}/comments` && /started/.test(r.json?.body ?? ''), 502);
    const payload = commentPayload({ issueNumber: issue, login: 'octo-dev', body: `/flowgate run gated target=${target.url}` });
    const first = await deliver(server.url, SECRET, 'issue_comment', payload);
    await eventually(async () => ((await deliveryStatus(server.services.orm, 'github', commentKey(payload.comment.id)))?.status === 'failed' ? true : undefined));
    expect(await threadRuns(issue)).toHaveLength(1);
    github.heal();
    const again = await deliver(server.url, SECRET, 'issue_comment', payload, { deliveryId: first.deliveryId });
    expect(again.body).toEqual({ accepted: 1, duplicate: 0 });
    await posted(issue, /started `gated` run/);
    expect(await deliveryStatus(server.services.orm, 'github', commentKey(payload.comment.id))).toMatchObject({ status: 'done', attempts: 2 });
    expect(await threadRuns(issue)).toHaveLength(1);
  });

  test('events the door does not act on are acknowledged and ignored', async () => {
    expect((await deliver(server.url, SECRET, 'ping', { zen: 'Keep it logically awesome.' })).status).toBe(200);
    expect((await deliver(server.url, SECRET, 'push', { ref: 'refs/heads/main' })).body).toEqual({ ignored: 'push: not an issue event' });
    const bot = await deliver(server.url, SECRET, 'issue_comment', commentPayload({ login: 'flowgate[bot]', body: '/approve', bot: true }));
    expect(bot.body).toEqual({ ignored: 'comment by a bot' });
  });
});

describe('issue labels', () => {
  beforeAll(async () => {
    const r = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'], members: ['dev@acme.io'], labelFlows: { 'needs-approval': 'gated' } });
    expect(r.body.labelFlows).toEqual({ 'needs-approval': 'gated' });
    const bad = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'], labelFlows: { x: 'nope' } });
    expect(bad.status).toBe(400);
  });

  test('an issue labelled without a usable ```json block gets a comment naming the problem', async () => {
    const issue = nextIssue();
    await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'opened', issueNumber: issue, login: 'octo-dev', body: 'Please run it', labels: ['needs-approval'] }));
    expect((await posted(issue, /did not start/)).body).toBe('@octo-dev the label `needs-approval` starts `gated`, but it did not start: The issue body has no ```json block with the flow\'s parameters. Edit the issue and add the label again.');
    const broken = 'Params:\n```json\n{"target": \n```';
    await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'labeled', issueNumber: issue, login: 'octo-dev', body: broken, labels: ['needs-approval'] }));
    expect((await posted(issue, /is not valid JSON/)).body).toMatch(/The ```json block is not valid JSON: .+\./);
    await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'labeled', issueNumber: issue, login: 'octo-dev', body: '```json\n{"quorum": 1}\n```', labels: ['needs-approval'] }));
    expect((await posted(issue, /Invalid parameters/)).body).toContain('target: required parameter of gated');
    expect(await threadRuns(issue)).toEqual([]);
  });

  test('an issue opened with the label and a good ```json block starts the flow once, talking back in the issue', async () => {
    const issue = nextIssue();
    const body = `We need this.\n\n\`\`\`json\n{"target": "${target.url}", "quorum": 1}\n\`\`\``;
    // GitHub sends both for a label set at creation.
    const opened = await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'opened', issueNumber: issue, login: 'octo-dev', body, labels: ['needs-approval', 'other'] }));
    const labeled = await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'labeled', issueNumber: issue, login: 'octo-dev', body, labels: ['needs-approval', 'other'], added: 'needs-approval' }));
    expect(opened.body).toEqual({ accepted: 1, duplicate: 0 });
    expect(labeled.body).toEqual({ accepted: 0, duplicate: 1 });
    const started = await posted(issue, /started `gated` run/);
    await posted(issue, /Approval needed/);
    const runs = await threadRuns(issue);
    expect(runs.map((r) => r.id)).toEqual([runIdIn(started)]);
    expect((await server.services.store.findById(runIdIn(started)))?.callback).toMatchObject({ type: 'github', github: { repositoryIdentifier: 'acme/app', issueNumber: issue, installationId: 7 } });
    const unmapped = await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'labeled', issueNumber: issue, login: 'octo-dev', body, labels: ['other'], added: 'other' }));
    expect(unmapped.body).toEqual({ ignored: 'no label maps to a flow type in acme/app' });
  });
});

describe('GitHub Actions', () => {
  test('a cicd run is dispatched as workflow_dispatch with its inputs; status reports finish it and the thread hears the result', async () => {
    const issue = nextIssue();
    const sent = await say(issue, 'octo-dev', '/flowgate run cicd-build commitSha=abc123');
    const started = await posted(issue, /started `cicd-build` run/);
    const id = runIdIn(started);
    const dispatch = await eventually(async () => github.dispatches.find((d) => d.inputs.executionId === id));
    expect(dispatch).toMatchObject({ repo: 'acme/app', workflow: 'build.yml', ref: 'main' });
    expect(Object.keys(dispatch.inputs).sort()).toEqual(['executionId', 'flowgateUrl', 'payload', 'token']);
    expect(dispatch.inputs.flowgateUrl).toBe(server.services.config.publicUrl);
    expect(JSON.parse(dispatch.inputs.payload)).toEqual({ id: 'cicd-build', commitSha: 'abc123' });
    expect(dispatch.inputs.token).toMatch(/^fgx_/);
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus === 'running' ? true : undefined));

    const report = (body: unknown) => server.call('POST', `${FLOWS}/executions/${id}/status`, body, dispatch.inputs.token);
    expect((await report({ status: 'running', cicdRunId: String(dispatch.runId), cicdRunUrl: `https://github.example/acme/app/actions/runs/${dispatch.runId}` })).status).toBe(200);
    github.concludeRun(dispatch.runId, 'success');
    expect((await report({ status: 'completed', result: { artifact: 'app-abc123.tgz' } })).status).toBe(200);
    const run = await waitForRun(server, id, ['Completed']);
    expect(run.result).toEqual({ artifact: 'app-abc123.tgz' });
    const result = await posted(issue, /### ✅ `cicd-build` completed/);
    expect(result.body).toContain(`Pipeline run: https://github.example/acme/app/actions/runs/${dispatch.runId}`);
    expect(result.body).toContain('"artifact": "app-abc123.tgz"');
    await eventually(async () => (github.reactionsTo(sent.commentId).includes('rocket') ? true : undefined));
    // The token went to the workflow only: no log line or comment shows it.
    expect(JSON.stringify((await server.call('GET', `${FLOWS}/${id}/logs`)).body)).not.toContain(dispatch.inputs.token);
    expect(JSON.stringify(github.commentsOn('acme/app', issue))).not.toContain(dispatch.inputs.token);
  });

  test('cancelling a cicd run cancels its GitHub Actions run, by the reported id or, before any report, by its name', async () => {
    const start = async () => {
      const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'cicd-build', repositoryIdentifier: 'acme/app', commitSha: 'def456' } });
      expect(r.status).toBe(201);
      const d = await eventually(async () => github.dispatches.find((x) => x.inputs.executionId === r.body.id));
      await eventually(async () => ((await server.call('GET', `${FLOWS}/${r.body.id}`)).body.engineStatus === 'running' ? true : undefined));
      return { id: r.body.id as string, dispatch: d };
    };
    const reported = await start();
    github.addWorkflowRun({ id: 777001, repo: 'acme/app', workflow: 'build.yml' });
    await server.call('POST', `${FLOWS}/executions/${reported.id}/status`, { status: 'running', cicdRunId: '777001' }, reported.dispatch.inputs.token);
    expect((await server.call('POST', `${FLOWS}/${reported.id}/cancel`)).status).toBe(200);
    expect(github.cancels).toContainEqual({ repo: 'acme/app', runId: 777001 });
    expect((await waitForRun(server, reported.id, ['Cancelled'])).status).toBe('Cancelled');

    const silent = await start();
    expect((await server.call('POST', `${FLOWS}/${silent.id}/cancel`)).status).toBe(200);
    expect(github.cancels).toContainEqual({ repo: 'acme/app', runId: silent.dispatch.runId });
  });

  test('installation tokens are fetched once per installation and reused', async () => {
    expect(github.tokensIssued.filter((t) => t.installationId === 7)).toHaveLength(1);
    expect(github.requests.filter((r) => r.path === '/repos/acme/app/installation').length).toBeLessThanOrEqual(1);
  });
});

describe('repository permission and GitHub identities', () => {
  beforeAll(async () => {
    github.roles.set('acme/app:octo-maint', 'maintain');
    github.roles.set('acme/app:octo-triage', 'triage');
    for (const [email, githubLogin] of [['maint@acme.io', 'octo-maint'], ['triage@acme.io', 'octo-triage']])
      expect((await server.call('PUT', `/api/v1/identities/${email}`, { githubLogin })).status).toBe(201);
  });

  test('write and above (maintain) may act, triage may not; the answer is read once per person and minute', async () => {
    const issue = nextIssue();
    await say(issue, 'octo-triage', `/flowgate run gated target=${target.url}`);
    expect((await posted(issue, /@octo-triage/)).body).toBe('@octo-triage only people with write access to acme/app can start flows here (your permission: triage).');
    expect(await threadRuns(issue)).toEqual([]);
    await say(issue, 'octo-maint', `/flowgate run gated target=${target.url}`);
    const runId = runIdIn(await posted(issue, /@octo-maint started `gated` run/));
    await say(issue, 'octo-maint', '/cancel');
    await posted(issue, new RegExp(`@octo-maint cancelled run ${runId}`));
    expect(github.requests.filter((r) => r.path === '/repos/acme/app/collaborators/octo-maint/permission')).toHaveLength(1);
  });

  test('an issue labelled by someone without write access starts nothing', async () => {
    await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'], labelFlows: { 'needs-approval': 'gated' } });
    const issue = nextIssue();
    const body = `\`\`\`json\n{"target": "${target.url}"}\n\`\`\``;
    await deliver(server.url, SECRET, 'issues', issuePayload({ action: 'labeled', issueNumber: issue, login: 'octo-triage', body, labels: ['needs-approval'] }));
    expect((await posted(issue, /did not start/)).body).toBe('@octo-triage the label `needs-approval` starts `gated`, but it did not start: Only people with write access to acme/app can start flows here (your permission: triage). Someone with write access can edit the issue and add the label again.');
    expect(await threadRuns(issue)).toEqual([]);
  });

  test('the identity API shows the bound GitHub user id and takes one; edits that keep the login keep it', async () => {
    const maint = (await server.call('GET', '/api/v1/identities/maint@acme.io')).body;
    expect(maint).toMatchObject({ githubLogin: 'octo-maint', githubUserId: githubUserId('octo-maint') });
    const kept = await server.call('PUT', '/api/v1/identities/maint@acme.io', { githubLogin: 'Octo-Maint', slackUserId: 'U0MAINT' });
    expect(kept.body).toMatchObject({ githubLogin: 'Octo-Maint', githubUserId: githubUserId('octo-maint'), slackUserId: 'U0MAINT' });
    const taken = await server.call('PUT', '/api/v1/identities/other@acme.io', { githubLogin: 'octo-other', githubUserId: githubUserId('octo-maint') });
    expect(taken.status).toBe(409);
    const bad = await server.call('PUT', '/api/v1/identities/other@acme.io', { githubLogin: 'octo-other', githubUserId: -3 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('githubUserId');
    const moved = await server.call('PUT', '/api/v1/identities/maint@acme.io', { githubLogin: 'octo-maint-2' });
    expect(moved.body).toMatchObject({ githubLogin: 'octo-maint-2', githubUserId: null });
    const pinned = await server.call('PUT', '/api/v1/identities/maint@acme.io', { githubLogin: 'octo-maint-2', githubUserId: 4242 });
    expect(pinned.body).toMatchObject({ githubLogin: 'octo-maint-2', githubUserId: 4242 });
  });
});
