import { htmlToText } from '../../src/doors/azure-devops/html.js';
import { FakeAzureDevOps, identity } from '../fakes/azure-devops.js';
import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually, waitForRun } from '../support/server.js';

// Azure DevOps end to end, on the real server process: a work item created with a mapped tag
// starts a gated run, whose approval request is commented on the work item; an owner moves the
// work item to Approved (service hook → re-read through the API → the core decides); the run
// completes and its result is commented. Azure DevOps is the local fake, subscribed like a real
// organisation (Basic auth, every change posted, Flowgate's own comments included).

const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
const PAT = 'fake-pat-e2e-0123456789';
const HOOK_USER = 'flowgate';
const HOOK_PASSWORD = 'e2e-hook-password-0123456789';
const REPO = 'acme/proj/app';

const ado = new FakeAzureDevOps('acme', PAT, ['proj']);
const target = new Recorder();
const dev = identity('dev@acme.io', 'Dev');
const owner = identity('owner@acme.io', 'Owner');
let server: ServerProcess;

const said = (workItemId: number) => ado.botComments(workItemId).map((c) => htmlToText(c.text.replace(/<\/?blockquote[^>]*>/gi, '\n')));
const saidMatching = (workItemId: number, re: RegExp) =>
  eventually(async () => said(workItemId).find((t) => re.test(t)), 30_000, `a comment matching ${re} (Flowgate said: ${JSON.stringify(said(workItemId))})`);

beforeAll(async () => {
  await ado.start();
  await target.start();
  server = await startServerProcess({
    DATABASE_URL: await freshDatabaseUrl('e2e_ado'),
    AZURE_DEVOPS_ORG_URL: ado.orgUrl,
    AZURE_DEVOPS_TOKEN: PAT,
    AZURE_DEVOPS_HOOK_USERNAME: HOOK_USER,
    AZURE_DEVOPS_HOOK_PASSWORD: HOOK_PASSWORD,
  });
  const project = await server.call('PUT', `/api/v1/projects/${REPO}`, {
    provider: 'azure-devops', owners: ['owner@acme.io'], members: ['dev@acme.io'], workItemFlows: { byTag: { deploy: 'gated' } },
  });
  expect(project.status).toBe(201);
  expect(project.body.workItemFlows).toEqual({ byTag: { deploy: 'gated' } });
  ado.subscribe({
    url: `${server.url}/azure-devops/hooks`, username: HOOK_USER, password: HOOK_PASSWORD,
    events: ['workitem.created', 'workitem.updated', 'workitem.commented'],
  });
}, TIMEOUT);

afterAll(async () => {
  try {
    await ado.settled();
  } finally {
    await endServer(server, [() => ado.stop(), () => target.stop()], { exitsCleanly: true });
  }
}, TIMEOUT);

test('work item with a mapped tag → run → approval comment → moved to Approved by an owner → run completes → result comment', async () => {
  const wi = ado.createWorkItem({ type: 'User Story', title: 'Deploy the API', by: dev, tags: ['deploy'], fields: { 'Custom.target': target.url } });

  // The run starts from the work item, for the person who created it, with the work item as callback.
  const run = await eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=${REPO}&workItemKey=${wi}&workItemType=ado-workitem`);
    return r.body.runs?.[0];
  }, 30_000, 'the run of the work item');
  expect(run).toMatchObject({ taskType: 'gated', triggeredBy: 'dev@acme.io', workItemRef: { type: 'ado-workitem', key: String(wi), organization: 'acme', project: 'proj' } });

  // The approval request is a comment on the work item, found again by the work item.
  const request = await saidMatching(wi, /approval needed for gated run/);
  expect(request).toContain(`approve the call to ${target.url}`);
  expect(request).toContain('Who can approve: owner@acme.io');
  const approval = await eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/approvals/by-azure-devops?repositoryIdentifier=${REPO}&workItemId=${wi}`);
    return r.status === 200 && r.body.context?.callback?.azureDevOps?.commentId ? r.body : undefined;
  }, 30_000, 'the approval by work item');
  expect(approval).toMatchObject({ executionId: run.id, status: 'pending', requestedBy: 'dev@acme.io' });
  expect((await server.call('GET', `${FLOWS}/${run.id}`)).body.status).toBe('Suspended');
  expect(target.requests).toHaveLength(0);

  // The owner moves the work item to Approved: the hook is re-read through the API before acting.
  const rev = ado.updateWorkItem(wi, { 'System.State': 'Approved' }, owner);
  const done = await waitForRun(server, run.id, ['Completed', 'Failed', 'Cancelled'], 30_000);
  expect(done.status).toBe('Completed');
  expect(ado.callsTo('GET', new RegExp(`/_apis/wit/workItems/${wi}/revisions/${rev - 1}$`)).length).toBeGreaterThan(0);
  expect(target.to('/after')).toHaveLength(1);
  expect(target.to('/after')[0].json).toEqual({ approvedBy: ['owner@acme.io'] });

  const decided = await server.call('GET', `${FLOWS}/approvals/${approval.id}`);
  expect(decided.body).toMatchObject({ status: 'approved', resolvedBy: 'owner@acme.io' });
  expect(decided.body.decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', verdict: 'approve', door: 'azure-devops' })]);
  await saidMatching(wi, /approved by owner@acme.io/);
  const result = await saidMatching(wi, /gated run .* completed/);
  expect(result).toContain(run.id);
  expect(server.output()).not.toContain(PAT);
}, TIMEOUT);
