import { buttonClick, FakeSlack, SlackSender } from '../fakes/slack.js';
import { createProject, createToken, eventually, startTestServer, type TestServer, waitForRun } from '../support/server.js';

// One flow, every view of it: a flow document with an approval, started from Slack, decided in
// Slack, then read through the four APIs Flowgate serves.
const SECRET = 'slack-signing-secret-round-trip';
const CHANNEL = 'C0PROD';
let server: TestServer;
let slack: SlackSender;
const fake = new FakeSlack();

beforeAll(async () => {
  await fake.start();
  fake.user('U0DEV', 'dev@acme.io', 'Dev Eloper').user('U0OWNER', 'owner@acme.io', 'Olivia Owner');
  server = await startTestServer({ env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
  await createProject(server, 'acme/prod', { namespace: 'production', owners: ['owner@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL });
  slack = new SlackSender(server.url, SECRET);
});
afterAll(async () => {
  await server?.stop();
  await fake.stop();
});

test('a flow document with an approval: executed from Slack, approved in Slack, complete in /api/v1/executions, /v1/workflow-runs, /api/v1/flow-runs and /sfp/api/flows', async () => {
  const doc = await server.call('POST', '/api/v1/flows', { yamlContent: `
name: ship-it
namespace: production
inputs:
  version: { type: string, required: true }
tasks:
  - { name: approve, type: flow.approval, properties: { message: "Ship {{ inputs.version }}?" } }
  - { name: ship, type: util.log, dependsOn: [approve], properties: { message: "shipping {{ inputs.version }}, approved by {{ outputs.approve.approvedBy[0] }}" } }
` });
  expect(doc.status).toBe(201);

  const command = await slack.command('run production:ship-it version=1.2.3', { user: 'U0DEV', channel: CHANNEL });
  expect(command.status).toBe(200);
  const request = await fake.waitFor('chat.postMessage', (b) => !!b.thread_ts && JSON.stringify(b.blocks ?? '').includes('Ship 1.2.3?'));
  const approvalId = request.body.blocks.find((b: any) => b.type === 'actions').elements[0].value as string;
  const { rows: [approval] } = await eventually(async () => {
    const r = await server.call('GET', `/sfp/api/flows/approvals/${approvalId}`);
    return r.body?.context?.callback?.slack?.messageTs ? { rows: [r.body] } : undefined;
  });
  const runId = approval.executionId as string;
  const click = await slack.interaction(buttonClick({ actionId: 'flowgate_approve', value: approvalId, user: 'U0OWNER', channel: CHANNEL, message: { ts: approval.context.callback.slack.messageTs, thread_ts: request.body.thread_ts } }));
  expect(click.status).toBe(200);
  await fake.waitFor('chat.update', (b) => JSON.stringify(b.blocks ?? '').includes('Approved'));
  expect((await waitForRun(server, runId)).status).toBe('Completed');

  // The workflow platform: the document's execution, its approval task decided.
  const exec = (await server.call('GET', `/api/v1/executions/${runId}`)).body;
  expect(exec.execution).toMatchObject({ id: runId, flowId: doc.body.id, flowName: 'ship-it', flowRevision: 1, namespace: 'production', status: 'SUCCESS', inputs: { version: '1.2.3' } });
  expect(exec.tasks.map((t: any) => [t.taskName, t.taskType, t.status])).toEqual([['approve', 'flow.approval', 'SUCCESS'], ['ship', 'util.log', 'SUCCESS']]);
  expect(exec.tasks[0].approvalId).toBe(approvalId);
  expect(JSON.parse(exec.tasks[1].outputs).message).toBe('shipping 1.2.3, approved by owner@acme.io');

  // The workflow-runs API.
  const viewer = await createToken(server, { name: 'reader', role: 'viewer' });
  const wr = await server.call('GET', `/v1/workflow-runs/${runId}`, undefined, viewer);
  expect(wr.body).toMatchObject({ id: runId, workflow_id: 'production:ship-it', project_id: 'acme/prod', status: 'completed' });

  // The flow-runs API: the decided approval as reviewedBy/At (a person number), the steps as actions.
  const fr = (await server.call('GET', `/api/v1/flow-runs/${runId}`)).body;
  expect(fr).toMatchObject({ id: runId, flowId: 'production:ship-it', phase: 'completed', reviewedBy: expect.any(Number), reviewedAt: expect.any(String) });
  expect(fr.actions.map((a: any) => [a.id, a.phase])).toEqual([['approve', 'completed'], ['ship', 'completed']]);

  // The sfp Flows API.
  const sfp = (await server.call('GET', `/sfp/api/flows/${runId}`)).body;
  expect(sfp).toMatchObject({ id: runId, taskType: 'production:ship-it', status: 'Completed', repositoryIdentifier: 'acme/prod', triggeredBy: 'dev@acme.io' });
});
