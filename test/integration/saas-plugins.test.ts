import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pluginFor } from '../../src/plugins/catalogue.js';
import { SAAS_PLUGINS } from '../../src/plugins/saas.js';
import { StepFailure } from '../../src/engine/step-failure.js';
import type { KindCall } from '../../src/executor/kinds.js';
import { FakeAzureDevOps } from '../fakes/azure-devops.js';
import { appKey, FakeGithub } from '../fakes/github.js';
import { FakeSlack } from '../fakes/slack.js';
import { createProject, startRun, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The slack.*, github.* and azure_devops.* plugins, through the doors' clients, against the fakes.
const PLUGIN_FLOWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/plugin-flows');
const APP_ID = '4343';
const PAT = 'fake-pat-saas-0123456789';
const ADO_REPO = 'acme/proj/app';
const key = appKey();
const slack = new FakeSlack();
const github = new FakeGithub(APP_ID, key.publicKey);
const ado = new FakeAzureDevOps('acme', PAT);
let server: TestServer;
let db: pg.Pool;
let flowsDir: string;

/** The fixture flows, and flows that make the APIs refuse or fail (retried per the step's `retry`). */
function writeFlows(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-saas-'));
  for (const f of ['slack.yaml', 'github.yaml', 'azure-devops.yaml']) fs.copyFileSync(path.join(PLUGIN_FLOWS, f), path.join(dir, f));
  const flow = (id: string, step: string) => fs.writeFileSync(path.join(dir, `${id}.yaml`), `id: ${id}\nname: ${id}\ncategory: testing\nsteps:\n  - ${step}\n`);
  flow('gh-comment-retried', '{ ref: say, type: github.comment, retry: { attempts: 2, backoffSeconds: 0 }, with: { issue: "{{ payload.issue }}", body: hello } }');
  flow('slack-missing-channel', '{ ref: post, type: slack.message, retry: { attempts: 2, backoffSeconds: 0 }, with: { channel: C0GONE, text: hello } }');
  flow('slack-unknown-person', '{ ref: dm, type: slack.message, retry: { attempts: 2, backoffSeconds: 0 }, with: { userEmail: nobody@acme.io, text: hello } }');
  flow('ado-bad-parameter', '{ ref: queue, type: azure_devops.pipeline, retry: { attempts: 2, backoffSeconds: 0 }, with: { pipeline: 7, parameters: { undeclared: x } } }');
  flow('ado-other-project', '{ ref: note, type: azure_devops.comment, retry: { attempts: 2, backoffSeconds: 0 }, with: { workItemId: "{{ payload.workItemId }}", text: hello } }');
  return dir;
}

beforeAll(async () => {
  await Promise.all([slack.start(), github.start(), ado.start()]);
  slack.user('U0ANN', 'ann@acme.io', 'Ann Lee', 'Europe/Berlin');
  github.installations.set('acme/app', 7);
  ado.addPipeline({ id: 7, project: 'proj', parameters: ['version', 'dryRun'] });
  flowsDir = writeFlows();
  server = await startTestServer({
    flows: flowsDir,
    env: {
      SLACK_BOT_TOKEN: 'xoxb-saas-test', SLACK_SIGNING_SECRET: 'slack-signing-secret-0123', SLACK_API_URL: slack.apiUrl,
      GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: 'gh-webhook-secret-0123456789', GITHUB_API_URL: github.url,
      AZURE_DEVOPS_ORG_URL: ado.orgUrl, AZURE_DEVOPS_TOKEN: PAT, AZURE_DEVOPS_HOOK_USERNAME: 'hooks', AZURE_DEVOPS_HOOK_PASSWORD: 'hook-password-0123456789',
    },
  });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app');
  await createProject(server, ADO_REPO, { provider: 'azure-devops' });
}, 60_000);
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await Promise.all([slack.stop(), github.stop(), ado.stop()]);
  if (flowsDir) fs.rmSync(flowsDir, { recursive: true, force: true });
});

const steps = async (id: string) =>
  Object.fromEntries((await db.query('select step_ref, status, output, error, attempt from step_runs where run_id = $1', [id])).rows.map((r) => [r.step_ref, r]));
const outputs = async (id: string) => Object.fromEntries(Object.entries(await steps(id)).map(([ref, s]: [string, any]) => [ref, s.output]));

async function completed(flow: string, payload: Record<string, unknown> = {}) {
  const id = await startRun(server, flow, payload);
  const run = await waitForRun(server, id, undefined, 30_000);
  expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
  return { id, out: await outputs(id) };
}

async function failed(flow: string, payload: Record<string, unknown> = {}) {
  const id = await startRun(server, flow, payload);
  const run = await waitForRun(server, id, undefined, 30_000);
  expect(run.status).toBe('Failed');
  return { id, run, steps: await steps(id) };
}

describe('the catalogue', () => {
  test('13 plugins in the saas category, each needing its door (available here: all three doors are on)', async () => {
    expect(SAAS_PLUGINS.map((p) => p.id)).toEqual([
      'slack.message', 'slack.update', 'slack.user',
      'github.comment', 'github.issue', 'github.labels', 'github.commit_status', 'github.deployment', 'github.deployment_status', 'github.dispatch',
      'azure_devops.comment', 'azure_devops.work_item', 'azure_devops.pipeline',
    ]);
    const listed = (await server.call('GET', '/api/v1/plugins?category=saas')).body as any[];
    for (const p of SAAS_PLUGINS) {
      expect(p.effectful).toBe(true);
      const door = p.id.startsWith('slack.') ? 'slack' : p.id.startsWith('github.') ? 'github' : 'azure-devops';
      expect(listed.find((l) => l.id === p.id)).toMatchObject({ category: 'saas', requires: [`door:${door}`], available: true, credentials: false });
    }
  });
});

describe('Slack', () => {
  test('a user by email, a channel message with blocks, a thread reply, a DM by email, an update', async () => {
    const { out } = await completed('slack', { version: '1.5' });
    expect(out.who).toEqual({ userId: 'U0ANN', name: 'Ann Lee', timezone: 'Europe/Berlin' });
    const post = slack.to('chat.postMessage', (b) => b.channel === 'C0OPS' && !b.thread_ts).at(-1)!;
    expect(post.authorization).toBe('Bearer xoxb-saas-test');
    expect(post.body).toMatchObject({ text: 'Deploying 1.5', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*Deploying* 1.5' } }] });
    expect(out.post).toEqual({ channel: 'C0OPS', ts: post.response.ts });
    const reply = slack.to('chat.postMessage', (b) => b.thread_ts === out.post.ts).at(-1)!;
    expect(reply.body).toMatchObject({ channel: 'C0OPS', text: 'started' });
    expect(out.reply).toEqual({ channel: 'C0OPS', ts: reply.response.ts });
    // A DM: the person by email, the conversation opened, the message posted there.
    expect(slack.to('users.lookupByEmail', (b) => b.email === 'ann@acme.io').length).toBeGreaterThanOrEqual(2);
    expect(slack.to('conversations.open').at(-1)!.body).toMatchObject({ users: 'U0ANN' });
    const dm = slack.to('chat.postMessage', (b) => b.channel === slack.dmOf('U0ANN')).at(-1)!;
    expect(dm.body.text).toBe('Hi Ann Lee, 1.5 is going out');
    expect(out.dm).toEqual({ channel: slack.dmOf('U0ANN'), ts: dm.response.ts });
    expect(slack.to('chat.update').at(-1)!.body).toMatchObject({ channel: 'C0OPS', ts: out.post.ts, text: 'Deployed 1.5' });
    expect(out.done).toEqual({ ts: out.post.ts });
  });

  test('Slack refusing (channel_not_found, users_not_found) fails the step for good: no retry', async () => {
    const before = slack.to('chat.postMessage', (b) => b.channel === 'C0GONE').length;
    slack.missingChannels.add('C0GONE');
    const gone = await failed('slack-missing-channel');
    expect(gone.steps.post).toMatchObject({ status: 'failed', attempt: 1, error: 'posting a message to Slack channel C0GONE: channel_not_found' });
    expect(slack.to('chat.postMessage', (b) => b.channel === 'C0GONE').length - before).toBe(1);
    const nobody = await failed('slack-unknown-person');
    expect(nobody.steps.dm).toMatchObject({ status: 'failed', attempt: 1, error: 'looking up Slack user nobody@acme.io (users.lookupByEmail): users_not_found' });
  });
});

describe('GitHub', () => {
  test('an issue with a label, a comment on it, labels changed, a commit status, a deployment and its status, a workflow dispatch: on the execution\'s repository', async () => {
    const { id, out } = await completed('github', { version: '1.5' });
    const number = out.opened.number as number;
    expect(out.opened).toEqual({ number, url: `https://github.example/acme/app/issues/${number}` });
    expect(github.issues.get(`acme/app#${number}`)).toMatchObject({ title: 'Deploy 1.5', body: 'Tracked by Flowgate' });
    const [comment] = github.commentsOn('acme/app', number);
    expect(comment.body).toBe('Starting 1.5');
    expect(out.said).toEqual({ id: comment.id, url: `https://github.example/acme/app/issues/${number}#issuecomment-${comment.id}` });
    // `deploy` removed, `never-there` was not there (fine), then two added.
    expect(out.labelled).toEqual({ labels: ['in-progress', 'prod'] });
    expect(github.issues.get(`acme/app#${number}`)!.labels).toEqual(['in-progress', 'prod']);
    const status = github.statuses.at(-1)!;
    expect(status).toMatchObject({
      repo: 'acme/app', sha: '0123456789abcdef0123456789abcdef01234567', state: 'success', context: 'flowgate/deploy',
      targetUrl: `https://flowgate.example/runs/${id}`, description: 'Deployed',
    });
    expect(out.status).toEqual({ id: status.id });
    // A deployment to staging, then its status, with the links.
    const deployment = github.deployments.at(-1)!;
    expect(deployment).toMatchObject({ repo: 'acme/app', ref: 'v1.5', environment: 'staging', description: 'Deploy 1.5', payload: { run: id } });
    expect(out.deployed).toEqual({ id: deployment.id, url: expect.stringContaining(`/repos/acme/app/deployments/${deployment.id}`) });
    expect(deployment.statuses).toEqual([{ id: (out.reported as { id: number }).id, state: 'success', environmentUrl: 'https://staging.acme.io', logUrl: `https://flowgate.example/runs/${id}`, description: null }]);
    // No ref: the repository's default branch; inputs as text.
    expect(github.dispatches.at(-1)).toMatchObject({ repo: 'acme/app', workflow: 'deploy.yml', ref: 'main', inputs: { version: '1.5', dryRun: 'false' } });
    expect(out.dispatched).toEqual({});
    // Everything as the app's installation on the project's repository, nowhere else.
    const acting = github.requests.filter((r) => r.path.startsWith('/repos/'));
    expect(acting.map((r) => r.path).filter((p) => !/^\/repos\/acme\/app(\/|\?|$)/.test(p))).toEqual([]);
  });

  test('a 5xx is retried (per the step\'s retry); a 4xx fails the step for good, naming the call and the status', async () => {
    const onIssue = (n: number) => (r: { method: string; path: string }) => r.method === 'POST' && r.path === `/repos/acme/app/issues/${n}/comments`;
    github.fail(onIssue(31), 502, 1);
    const { out } = await completed('gh-comment-retried', { issue: 31 });
    expect(github.requests.filter(onIssue(31))).toHaveLength(2);
    expect(github.commentsOn('acme/app', 31).map((c) => c.body)).toEqual(['hello']);
    expect(out.say.id).toBe(github.commentsOn('acme/app', 31)[0].id);

    github.fail(onIssue(32), 403);
    const refused = await failed('gh-comment-retried', { issue: 32 });
    expect(github.requests.filter(onIssue(32))).toHaveLength(1);
    expect(refused.steps.say).toMatchObject({ status: 'failed', attempt: 1, error: 'posting a comment on acme/app#32: HTTP 403: Injected failure' });
    github.heal();
  });
});

describe('Azure DevOps', () => {
  test('a work item created, commented on, updated; a pipeline queued: in the execution\'s project', async () => {
    const { out } = await completed('azure-devops', { repositoryIdentifier: ADO_REPO, version: '1.5' });
    const id = out.created.id as number;
    expect(out.created).toEqual({ id, rev: 1, url: `${ado.orgUrl}/proj/_workitems/edit/${id}` });
    const create = ado.callsTo('POST', /\/proj\/_apis\/wit\/workitems\/\$Task$/i).at(-1)!;
    expect(create.body).toEqual(expect.arrayContaining([
      { op: 'add', path: '/fields/System.Title', value: 'Deploy 1.5' },
      { op: 'add', path: '/fields/System.Description', value: '<p>Opened by Flowgate</p>' },
      { op: 'add', path: '/fields/System.Tags', value: 'deploy' },
    ]));
    // Plain text is shown as written: escaped, line breaks kept.
    const [comment] = ado.botComments(id);
    expect(comment.text).toBe('Starting &lt;1.5&gt;<br>second line');
    expect(out.commented).toEqual({ id: comment.id });
    const item = ado.workItem(id);
    expect(item.fields).toMatchObject({ 'System.State': 'Active', 'System.Tags': 'deploy; started', 'System.Title': 'Deploy 1.5' });
    expect(out.updated).toEqual({ id, rev: item.rev, url: `${ado.orgUrl}/proj/_workitems/edit/${id}` });
    const run = ado.pipelineRuns.at(-1)!;
    expect(run).toMatchObject({ pipelineId: 7, project: 'proj', templateParameters: { version: '1.5', dryRun: 'false' }, resources: { repositories: { self: { refName: 'refs/heads/main' } } } });
    expect(out.queued).toEqual({ runId: run.id, url: `${ado.orgUrl}/proj/_build/results?buildId=${run.id}` });
    expect(ado.calls.every((c) => c.authorized)).toBe(true);
  });

  test('a 400 fails the step for good; a work item of another project is not touched', async () => {
    const before = ado.callsTo('POST', /\/_apis\/pipelines\/7\/runs$/).length;
    const bad = await failed('ado-bad-parameter', { repositoryIdentifier: ADO_REPO });
    expect(ado.callsTo('POST', /\/_apis\/pipelines\/7\/runs$/).length - before).toBe(1);
    expect(bad.steps.queue).toMatchObject({ status: 'failed', attempt: 1 });
    expect(bad.steps.queue.error).toMatch(/^Azure DevOps: queueing pipeline 7 failed \(HTTP 400\): Unexpected parameter 'undeclared'/);

    const elsewhere = ado.createWorkItem({ project: 'other', type: 'Bug', title: 'Not ours', by: ado.bot });
    const other = await failed('ado-other-project', { repositoryIdentifier: ADO_REPO, workItemId: elsewhere });
    expect(other.steps.note).toMatchObject({ status: 'failed', attempt: 1, error: `work item ${elsewhere} not found in project proj` });
    expect(ado.commentsOn(elsewhere)).toEqual([]);
  });
});

describe('a door not configured on the server', () => {
  const call = (type: string, w: Record<string, unknown>): KindCall => ({
    step: { ref: 's', type, with: w }, run: { id: 'r1', taskType: 't', repositoryIdentifier: 'acme/app', triggeredBy: 'x', callback: null },
    context: {}, credentials: {}, attempt: 1, note: () => {}, extra: { doors: {} },
  }) as unknown as KindCall;

  test.each([
    ['slack.message', { channel: 'C1', text: 'hi' }, 'slack'],
    ['github.comment', { issue: 1, body: 'hi' }, 'github'],
    ['azure_devops.comment', { workItemId: 1, text: 'hi' }, 'azure-devops'],
  ])('%s fails for good, saying so', async (type, w, door) => {
    const err = await pluginFor(type)!.run(call(type, w)).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err).toMatchObject({ message: `the ${door} door is not configured on this server`, retryable: false });
  });
});
