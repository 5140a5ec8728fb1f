import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deliveryStatus } from '../../src/doors/inbound.js';
import { htmlToText } from '../../src/doors/azure-devops/html.js';
import { FakeAzureDevOps, identity, type EventType, type Subscription } from '../fakes/azure-devops.js';
import { Recorder } from '../support/recorder.js';
import { FIXTURE_FLOWS, createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The Azure DevOps door in this process: real PostgreSQL, real engine, real HTTP; Azure DevOps is
// a local fake that azure-devops-node-api really talks to, and that posts service hooks (Basic
// auth) for every change — including Flowgate's own comments — like a subscribed organisation.

const FLOWS = '/sfp/api/flows';
const PAT = 'fake-pat-integration-0123456789';
const HOOK_USER = 'flowgate-hooks';
const HOOK_PASSWORD = 'hook-password-0123456789abcdef';
const REPO = 'acme/proj/app';
const ALL: EventType[] = ['workitem.created', 'workitem.updated', 'workitem.commented', 'ms.vss-pipelines.run-state-changed-event'];

const dev = identity('dev@acme.io', 'Dev');
const owner = identity('owner@acme.io', 'Owner');
const lead = identity('lead@acme.io', 'Lead');
const stranger = identity('stranger@acme.io', 'Stranger');
const domainUser = identity('ACME\\pat', 'Pat (domain)');

const ado = new FakeAzureDevOps('acme', PAT, ['proj', 'other']);
const target = new Recorder();
let server: TestServer;
let flowsDir: string;
let hook: Subscription;
let appToken: string;

/** The fixture flows plus cicd flow types on Azure Pipelines. */
function writeFlows(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-ado-flows-'));
  for (const f of fs.readdirSync(FIXTURE_FLOWS)) fs.copyFileSync(path.join(FIXTURE_FLOWS, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'ado-build.yaml'), [
    'id: ado-build', 'name: Build on Azure Pipelines', 'category: build', 'executionMode: cicd',
    'parameters:', '  - { name: commitSha, type: string, required: true }',
    'cicd:', '  provider: azure-pipelines', '  pipeline: 7', '  ref: main', '',
  ].join('\n'));
  fs.writeFileSync(path.join(dir, 'ado-missing-pipeline.yaml'), [
    'id: ado-missing-pipeline', 'name: Unknown pipeline', 'category: build', 'executionMode: cicd',
    'cicd:', '  provider: azure-pipelines', '  pipeline: 999', '',
  ].join('\n'));
  return dir;
}

beforeAll(async () => {
  await ado.start();
  await target.start();
  ado.addPipeline({ id: 7, project: 'proj' });
  flowsDir = writeFlows();
  server = await startTestServer({
    flows: flowsDir,
    env: { AZURE_DEVOPS_ORG_URL: ado.orgUrl, AZURE_DEVOPS_TOKEN: PAT, AZURE_DEVOPS_HOOK_USERNAME: HOOK_USER, AZURE_DEVOPS_HOOK_PASSWORD: HOOK_PASSWORD },
  });
  hook = { url: `${server.url}/azure-devops/hooks`, username: HOOK_USER, password: HOOK_PASSWORD, events: ALL };
  ado.subscribe(hook);
  await createProject(server, REPO, {
    provider: 'azure-devops', owners: ['owner@acme.io', 'lead@acme.io'], members: ['dev@acme.io'],
    workItemFlows: { byTag: { deploy: 'gated', 'two-approvals': 'gated-quorum', announce: 'notifier' }, byType: { Incident: 'notifier' } },
    approverGroups: { gate: ['owner@acme.io', 'lead@acme.io'] },
  });
  appToken = await createToken(server, { name: 'pipelines', role: 'application' });
});

/** Until every hook was delivered and every accepted event processed (events cause comments, which cause events…). */
async function quiet(): Promise<void> {
  await eventually(async () => {
    await ado.settled();
    const rows = await server.services.orm.em.fork().getConnection().execute<{ n: string }[]>(
      `select count(*) as n from inbound_deliveries where door = 'azure-devops' and status = 'processing'`);
    return Number(rows[0].n) === 0 && (await ado.settled(), true) ? true : undefined;
  }, 30_000, 'all Azure DevOps events processed');
}

afterAll(async () => {
  if (server) await quiet().catch((err) => console.warn(String(err)));
  await server?.stop();
  await ado.stop();
  await target.stop();
  fs.rmSync(flowsDir, { recursive: true, force: true });
});

/** Flowgate's comments on a work item, as text (quoted parts included). */
const plain = (html: string) => htmlToText(html.replace(/<\/?blockquote[^>]*>/gi, '\n'));
const said = (workItemId: number) => ado.botComments(workItemId).map((c) => plain(c.text));
async function saidMatching(workItemId: number, re: RegExp): Promise<string> {
  try {
    return await eventually(async () => said(workItemId).find((t) => re.test(t)), 20_000, `a comment matching ${re} on work item ${workItemId}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; Flowgate said:\n${said(workItemId).join('\n---\n')}`);
  }
}

async function runOf(workItemId: number, taskType: string): Promise<any> {
  return eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=${REPO}&workItemKey=${workItemId}&workItemType=ado-workitem&taskType=${taskType}`);
    return r.body.runs?.[0];
  }, 20_000, `a ${taskType} run for work item ${workItemId}`);
}

async function pendingApproval(workItemId: number): Promise<any> {
  return eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/approvals/by-azure-devops?repositoryIdentifier=${REPO}&workItemId=${workItemId}`);
    return r.status === 200 && r.body.status === 'pending' && r.body.context?.callback?.azureDevOps?.commentId ? r.body : undefined;
  }, 20_000, `a posted approval on work item ${workItemId}`);
}

describe('hooks', () => {
  test('wrong or missing credentials: 401 and no effect', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'unsubscribed', by: dev });
    await ado.settled();
    const original = ado.sent('workitem.created', wi)[0].event;
    const event = { ...original, id: 'event-with-bad-credentials' };
    // Wait until the creation's own event was processed: only then do the API calls stand still.
    await eventually(async () => ((await deliveryStatus(server.services.orm, 'azure-devops', original.id))?.status === 'done' ? true : undefined));
    const callsBefore = ado.calls.length;
    for (const creds of [{ username: HOOK_USER, password: 'wrong-password-0123456789' }, { username: 'someone', password: HOOK_PASSWORD }]) {
      const r = await ado.deliver({ url: hook.url, ...creds }, event);
      expect(r.status).toBe(401);
    }
    const bare = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(await deliveryStatus(server.services.orm, 'azure-devops', 'event-with-bad-credentials')).toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    expect(ado.calls.length).toBe(callsBefore);
  });

  test('the same event twice has one effect', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'announce it', by: dev, tags: ['announce'], fields: { 'Custom.text': 'hello from ADO' } });
    await ado.settled();
    const [first] = ado.sent('workitem.created', wi);
    expect(first.status).toBe(202);
    const again = await ado.deliver(hook, first.event);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ status: 'duplicate', id: first.event.id });
    const run = await runOf(wi, 'notifier');
    await waitForRun(server, run.id);
    await saidMatching(wi, /notifier run .* completed/);
    await ado.settled();
    const runs = await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=${REPO}&workItemKey=${wi}&workItemType=ado-workitem`);
    expect(runs.body.totalCount).toBe(1);
    expect(said(wi).filter((t) => /started .*notifier/.test(t))).toHaveLength(1);
    expect(said(wi).filter((t) => /message from .*notifier/.test(t))).toEqual([expect.stringContaining('message from notifier run')]);
    expect(ado.botComments(wi).some((c) => c.text.includes('hello from ADO'))).toBe(true);
  });

  test('other event types are answered and ignored; malformed events are refused', async () => {
    const ignored = await ado.deliver(hook, { id: 'git-1', eventType: 'git.push', resource: {} });
    expect(ignored.status).toBe(200);
    expect(JSON.parse(ignored.body)).toMatchObject({ status: 'ignored' });
    expect((await ado.deliver(hook, { eventType: 'workitem.created' })).status).toBe(400);
  });

  test('minimal resource details: everything is read through the API', async () => {
    const wi = ado.createWorkItem({ type: 'Incident', title: 'minimal', by: dev, fields: { 'Custom.text': 'minimal payload' } });
    await ado.settled();
    const full = ado.sent('workitem.created', wi)[0].event;
    // A second organisation-less, field-less copy of another creation: only ids and a URL.
    const wi2 = ado.createWorkItem({ type: 'Incident', title: 'minimal 2', by: dev, fields: { 'Custom.text': 'second' } });
    await ado.settled();
    await ado.deliver(hook, { id: 'minimal-event-1', eventType: 'workitem.created', resource: { id: wi2, url: `${ado.orgUrl}/${ado.projectId('proj')}/_apis/wit/workItems/${wi2}` } });
    void full;
    const run = await runOf(wi2, 'notifier');
    expect(run).toBeDefined();
    await saidMatching(wi2, /message from notifier run/);
  });
});

describe('work items start flows; approvals in the work item', () => {
  test('a tag maps to a flow with parameters from the work item; /reject <reason> rejects; the result is commented', async () => {
    const wi = ado.createWorkItem({
      type: 'User Story', title: 'deploy the thing', by: dev, tags: ['deploy'],
      description: `<div>Please deploy.</div><div>\`\`\`json</div><div>{"target": "${target.url}"}</div><div>\`\`\`</div>`,
    });
    const run = await runOf(wi, 'gated');
    expect(run.triggeredBy).toBe('dev@acme.io');
    const approval = await pendingApproval(wi);
    expect(approval).toMatchObject({ executionId: run.id, requestedBy: 'dev@acme.io', approvers: ['owner@acme.io', 'lead@acme.io'], approversSource: 'owners' });
    const request = await saidMatching(wi, /approval needed/);
    expect(request).toContain(`approve the call to ${target.url}`);
    expect(request).toMatch(/Who can approve: owner@acme.io, lead@acme.io/);
    expect(request).toMatch(/Expires: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(request).toMatch(/starts with \/approve, or move this work item to the state Approved/);
    // The approval is found by work item, and the comment it was posted as is recorded.
    const posted = ado.botComments(wi).find((c) => c.text.includes('approval needed'))!;
    expect(approval.context.callback.azureDevOps).toEqual({ repositoryIdentifier: REPO, workItemId: wi, commentId: posted.id });

    // Mentioning /reject mid-sentence does nothing.
    ado.comment(wi, '<div>Should we /reject this?</div>', owner);
    ado.comment(wi, '<div>Not on a Friday.</div><div>/reject too risky on a Friday</div>', owner);
    const outcome = await saidMatching(wi, /rejected by owner@acme.io/);
    expect(outcome).toContain('gated run');
    const finished = await waitForRun(server, run.id);
    expect(finished.status).toBe('Failed');
    await saidMatching(wi, /gated run .* failed/);
    const a = await server.call('GET', `${FLOWS}/approvals/${approval.id}`);
    expect(a.body).toMatchObject({ status: 'rejected', resolvedBy: 'owner@acme.io', reason: 'too risky on a Friday' });
    expect(a.body.decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', verdict: 'reject', door: 'azure-devops' })]);
    expect(target.requests).toHaveLength(0);
    // The comment was re-read through the API before acting.
    expect(ado.callsTo('GET', new RegExp(`/_apis/wit/workItems/${wi}/comments$`)).length).toBeGreaterThan(0);
  });

  test('a state change by someone not allowed: a comment explains, the approval stays pending; an owner moving it approves', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'second deploy', by: dev, tags: ['deploy'], fields: { 'Custom.target': target.url } });
    const run = await runOf(wi, 'gated');
    const approval = await pendingApproval(wi);

    ado.updateWorkItem(wi, { 'System.State': 'Approved' }, stranger);
    const refusal = await saidMatching(wi, /stranger@acme.io: moving the work item to Approved was not accepted/);
    expect(refusal).toContain('The approval is still pending.');
    expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('pending');
    // Nor may the requester, a member but no owner.
    ado.updateWorkItem(wi, { 'System.State': 'Active' }, dev);
    ado.updateWorkItem(wi, { 'System.State': 'Approved' }, dev);
    await saidMatching(wi, /dev@acme.io is not an owner of acme\/proj\/app/);
    expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('pending');

    ado.updateWorkItem(wi, { 'System.State': 'Active' }, dev);
    ado.updateWorkItem(wi, { 'System.State': 'Approved' }, lead);
    await saidMatching(wi, /approved by lead@acme.io/);
    expect((await waitForRun(server, run.id)).status).toBe('Completed');
    await saidMatching(wi, /gated run .* completed/);
    expect(target.to('/after')).toHaveLength(1);
    expect(target.to('/after')[0].json).toEqual({ approvedBy: ['lead@acme.io'] });
  });

  test('an Azure DevOps name without an email: explained until it is linked in the identity directory', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'third deploy', by: dev, tags: ['deploy'], fields: { 'Custom.target': target.url } });
    const run = await runOf(wi, 'gated');
    await pendingApproval(wi);
    ado.comment(wi, '<div>/approve</div>', domainUser);
    await saidMatching(wi, /ACME\\pat is not linked to an email/);
    expect((await server.call('PUT', `/api/v1/identities/owner@acme.io`, { adoUniqueName: 'ACME\\pat' })).status).toBeLessThan(300);
    ado.comment(wi, '<p>/approve</p>', domainUser);
    await saidMatching(wi, /approved by owner@acme.io/);
    expect((await waitForRun(server, run.id)).status).toBe('Completed');
  });
});

describe('quorum', () => {
  test('each vote is commented with the quorum progress; the last one decides', async () => {
    const wi = ado.createWorkItem({
      type: 'Task', title: 'two approvals', by: dev, tags: ['two-approvals'],
      description: `<p>\`\`\`json<br>{"target": "${target.url}"}<br>\`\`\`</p>`,
    });
    const run = await runOf(wi, 'gated-quorum');
    const approval = await pendingApproval(wi);
    expect(approval.quorum).toBe(2);
    expect(await saidMatching(wi, /approval needed/)).toContain('Approvals needed: 2 of 2, each person counts once');
    ado.comment(wi, '<div>/approve</div>', owner);
    const vote = await saidMatching(wi, /owner@acme.io approved — 1 of 2 approvals/);
    expect(vote).toContain('Still needed: 1');
    expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('pending');
    ado.updateWorkItem(wi, { 'System.State': 'Approved' }, lead);
    await saidMatching(wi, /approved by owner@acme.io, lead@acme.io/);
    expect((await waitForRun(server, run.id)).status).toBe('Completed');
  });
});

describe('commands in comments', () => {
  test('/flowgate run, /status, /cancel; errors are answered', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'commands', by: dev });
    ado.comment(wi, '<div>/flowgate run gatd target=x</div>', dev);
    await saidMatching(wi, /Unknown flow type "gatd". Did you mean gated/);
    ado.comment(wi, `<div>/flowgate run gated target="${target.url}" repo=nope</div>`, dev);
    await saidMatching(wi, /nope is not a Flowgate project/);
    ado.comment(wi, `<div>/flowgate run gated target="${target.url}"</div>`, dev);
    await saidMatching(wi, /started gated run .* for dev@acme.io \(comment command\)/);
    const run = await runOf(wi, 'gated');
    await pendingApproval(wi);
    ado.comment(wi, '<div>/status</div>', stranger);
    const status = await saidMatching(wi, /Flowgate · status/);
    expect(status).toContain(`gated run ${run.id}: suspended`);
    expect(status).toMatch(/: pending \(0 of 1 approvals, expires/);
    ado.comment(wi, '<div>/cancel</div>', stranger);
    await saidMatching(wi, /stranger@acme.io may not cancel runs of acme\/proj\/app/);
    ado.comment(wi, '<div>/cancel</div>', dev);
    await saidMatching(wi, new RegExp(`gated run ${run.id} was cancelled by dev@acme.io`));
    expect((await waitForRun(server, run.id)).status).toBe('Cancelled');
    await saidMatching(wi, /approval for .* was cancelled by dev@acme.io/);
    ado.comment(wi, '<div>/approve</div>', owner);
    await saidMatching(wi, /the approve command did nothing/);
  });
});

describe('run control in comments', () => {
  test('/flowgate pause, resume and retry: the rules of run control; a retry asks again in the work item', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'control', by: dev });
    ado.comment(wi, `<div>/flowgate run gated target="${target.url}"</div>`, dev);
    const run = await runOf(wi, 'gated');
    const first = await pendingApproval(wi);
    ado.comment(wi, '<div>/flowgate pause</div>', stranger);
    await saidMatching(wi, /stranger@acme.io may not pause runs of acme\/proj\/app/);
    ado.comment(wi, '<div>/flowgate pause</div>', dev);
    await saidMatching(wi, new RegExp(`Paused gated run ${run.id}: running steps finish, nothing new starts until it is resumed\\. \\(dev@acme.io\\)`));
    expect((await server.call('GET', `/v1/workflow-runs/${run.id}?project_id=${REPO}`)).body.status).toBe('paused');
    ado.comment(wi, '<div>/flowgate resume</div>', dev);
    await saidMatching(wi, new RegExp(`Resumed gated run ${run.id}\\. \\(dev@acme.io\\)`));

    ado.comment(wi, '<div>/reject not this sprint</div>', owner);
    expect((await waitForRun(server, run.id, ['Failed'])).status).toBe('Failed');
    ado.comment(wi, '<div>/flowgate retry</div>', dev);
    const retried = await saidMatching(wi, /Retrying gated run/);
    const retryId = new RegExp(`Retrying gated run ${run.id} as run ([0-9a-f-]{36}): its completed steps are kept, the others run again\\.`).exec(retried)![1];
    const second = await pendingApproval(wi);
    expect(second.id).not.toBe(first.id);
    expect(second.executionId).toBe(retryId);
    ado.comment(wi, '<div>/approve</div>', owner);
    expect((await waitForRun(server, retryId)).status).toBe('Completed');
  });
});

describe('Azure Pipelines (cicd mode)', () => {
  const start = async (type = 'ado-build') => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: type, repositoryIdentifier: REPO, commitSha: 'abc123' } });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const pipelineRunOf = (executionId: string) => eventually(async () => ado.pipelineRuns.find((r) => r.templateParameters.flowgateExecutionId === executionId), 20_000, 'the pipeline run');
  const running = (id: string) => eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/${id}`);
    return r.body.engineStatus === 'running' && r.body.cicdRunUrl ? r.body : undefined;
  });

  test('dispatch queues the pipeline with the execution id, the Flowgate URL and a secret token; status reports complete it', async () => {
    const id = await start();
    const pr = await pipelineRunOf(id);
    expect(pr.templateParameters).toEqual({ flowgateExecutionId: id, flowgateUrl: server.services.config.publicUrl, flowgatePayload: expect.any(String) });
    expect(JSON.parse(pr.templateParameters.flowgatePayload)).toEqual({ commitSha: 'abc123', id: 'ado-build' });
    expect(pr.variables.FLOWGATE_TOKEN).toEqual({ value: expect.stringMatching(/^fgx?_/), isSecret: true });
    expect(pr.resources).toEqual({ repositories: { self: { refName: 'refs/heads/main' } } });
    const detail = await running(id);
    expect(detail.cicdRunUrl).toBe(`${ado.orgUrl}/proj/_build/results?buildId=${pr.id}`);
    const token = pr.variables.FLOWGATE_TOKEN.value!;
    const statusUrl = `${FLOWS}/executions/${id}/status`;
    expect((await server.call('POST', statusUrl, { status: 'running', cicdRunId: String(pr.id) }, token)).status).toBe(200);
    expect((await server.call('POST', statusUrl, { status: 'completed', result: { artifact: 'app-1.0.zip' } }, token)).status).toBe(200);
    const done = await waitForRun(server, id);
    expect(done.status).toBe('Completed');
    // The pipeline's own run-state-changed hook afterwards changes nothing.
    ado.setRunState(pr.id, 'completed', 'succeeded');
    await ado.settled();
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.status).toBe('Completed');
  });

  test('a run-state-changed hook moves the run (re-read through the Pipelines API)', async () => {
    const id = await start();
    const pr = await pipelineRunOf(id);
    await running(id);
    const before = ado.callsTo('GET', new RegExp(`/_apis/pipelines/7/runs/${pr.id}$`)).length;
    ado.setRunState(pr.id, 'completed', 'failed');
    const done = await waitForRun(server, id);
    expect(done.status).toBe('Failed');
    expect(ado.callsTo('GET', new RegExp(`/_apis/pipelines/7/runs/${pr.id}$`)).length).toBeGreaterThan(before);
    // A forged event for a run that is not Flowgate's (or a state the API does not confirm) does nothing.
    const forged = ado.runEvent({ ...pr, id: 424242, state: 'completed', result: 'succeeded' });
    expect((await ado.deliver(hook, forged)).status).toBe(202);
  });

  test('cancel cancels the build', async () => {
    const id = await start();
    const pr = await pipelineRunOf(id);
    await running(id);
    const r = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(r.status).toBeLessThan(300);
    const patch = await eventually(async () => ado.callsTo('PATCH', new RegExp(`/proj/_apis/build/builds/${pr.id}$`))[0]);
    expect(patch.body).toEqual({ status: 4 });
    expect(ado.pipelineRuns.find((x) => x.id === pr.id)!.state).toBe('canceling');
    expect((await waitForRun(server, id)).status).toBe('Cancelled');
    ado.setRunState(pr.id, 'completed', 'canceled');
    await ado.settled();
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.status).toBe('Cancelled');
  });

  test('an unknown pipeline fails the run at once (a 404 is final)', async () => {
    const id = await start('ado-missing-pipeline');
    const done = await waitForRun(server, id);
    expect(done.status).toBe('Failed');
    expect(JSON.stringify(done)).toMatch(/pipeline 999 not found/);
    expect(JSON.stringify(done)).not.toContain(PAT);
  });

  test('a cicd run started from a work item reports its result there', async () => {
    const wi = ado.createWorkItem({ type: 'Task', title: 'build', by: dev });
    ado.comment(wi, '<div>/flowgate run ado-build commitSha=def456</div>', dev);
    const run = await runOf(wi, 'ado-build');
    const pr = await pipelineRunOf(run.id);
    await running(run.id);
    expect((await server.call('POST', `${FLOWS}/executions/${run.id}/status`, { status: 'completed' }, appToken)).status).toBe(200);
    await saidMatching(wi, /ado-build run .* completed/);
    void pr;
  });
});
