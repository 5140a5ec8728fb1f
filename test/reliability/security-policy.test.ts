import { parseManifest } from '../../src/core/registry/load-manifests.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// Who approves is the flow's and the project's decision, never the requester's; a caller cannot
// point a run at another project's threads. Each attempt is refused, changes nothing, and is audited.
const FLOWS = '/sfp/api/flows';
let server: TestServer;
const target = new Recorder();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await target.start();
  server = await startTestServer({ env: { FLOWGATE_SCHEDULER_POLL_MS: '300' } });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io', 'buddy@acme.io'], slackChannel: 'C0APP' });
  await createProject(server, 'acme/other', { owners: ['victim@acme.io'], slackChannel: 'C0OTHER' });
  for (const who of ['owner', 'dev', 'buddy']) tokens[who] = await createToken(server, { name: who, role: who === 'owner' ? 'owner' : 'member', email: `${who}@acme.io`, projects: ['acme/app'] });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

const count = async (sql: string, params: unknown[] = []) =>
  Number((await server.services.orm.em.getConnection().execute<{ n: string }[]>(`select count(*)::text as n from ${sql}`, params))[0].n);
const approve = (id: string, who: string) => server.call('POST', `${FLOWS}/approvals/${id}/approve`, { approver: who, approverEmail: `${who}@acme.io` }, tokens[who]);
const pendingApproval = (runId: string) => eventually(async () => {
  const a = await server.call('GET', `${FLOWS}/approvals/${runId}`);
  return a.status === 200 && a.body.status === 'pending' ? a.body : undefined;
});

test('payload-chosen approvers: a manifest taking them from the payload does not load; a requester naming a buddy in the payload changes nothing', async () => {
  const loaded = parseManifest('grab.yaml', 'id: grab\nname: Grab\nsteps:\n  - { ref: a, type: approval, with: { approvers: "{{ payload.approvers }}", allowSelfApproval: "{{ payload.self }}" } }\n');
  expect(loaded.definition).toBeUndefined();
  expect(loaded.problems.map((p) => p.split(': the approval policy')[0])).toEqual(['grab.yaml: steps[0].with.approvers', 'grab.yaml: steps[0].with.allowSelfApproval']);

  const r = await server.call('POST', `${FLOWS}/run`, {
    payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: target.url, approvers: ['buddy@acme.io'], quorum: 1, allowSelfApproval: true, selfApproval: true },
  }, tokens.dev);
  expect(r.status).toBe(201);
  const approval = await pendingApproval(r.body.id);
  expect(approval).toMatchObject({ approversSource: 'owners', approvers: ['owner@acme.io', 'second@acme.io'], allowSelfApproval: false });
  for (const who of ['buddy', 'dev']) {
    const refused = await approve(approval.id, who);
    expect(refused.status).toBe(403);
  }
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', decisions: [] });
  const audit = await server.services.audit.list({ targetType: 'approval', targetId: approval.id });
  expect(audit.filter((a) => a.action === 'approval.refused').map((a) => a.actor).sort()).toEqual(['buddy@acme.io', 'dev@acme.io']);
  await server.call('POST', `${FLOWS}/${r.body.id}/cancel`);
});

test('foreign callbacks: a REST start naming another project\'s issue, channel or work item is refused, writes no run, and is audited', async () => {
  const start = (callback: unknown) => server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: target.url }, callback }, tokens.dev);
  const runsBefore = await count('runs');
  const foreign = [
    { type: 'github', github: { repositoryIdentifier: 'acme/other', issueNumber: 7 } },
    { type: 'slack', slack: { channel: 'C0OTHER', threadTs: '1700000000.000100' } },
    { type: 'azure-devops', azureDevOps: { repositoryIdentifier: 'acme/other', workItemId: 3 } },
  ];
  const answers = await Promise.all(foreign.map(start));
  expect(answers.map((a) => a.status)).toEqual([403, 403, 403]);
  expect(answers[0].body.message).toBe("callback.github.repositoryIdentifier: acme/other is not this run's repository (acme/app)");
  expect(answers[1].body.message).toBe('callback.slack.channel: C0OTHER is not the Slack channel of acme/app (C0APP)');
  expect(await count('runs')).toBe(runsBefore);
  const refusals = (await server.services.audit.list({ targetType: 'project', targetId: 'acme/app', limit: 100 })).filter((a) => a.action === 'run.refused');
  expect(refusals).toHaveLength(3);
  expect(refusals.every((a) => a.actor === 'dev@acme.io' && a.door === 'rest')).toBe(true);

  // The run's own threads are fine; so is an external approval's own project, but not another's.
  const own = await start({ type: 'github', github: { repositoryIdentifier: 'acme/app', issueNumber: 7 } });
  expect(own.status).toBe(201);
  await server.call('POST', `${FLOWS}/${own.body.id}/cancel`);
  const app = await createToken(server, { name: 'engine', role: 'application', projects: ['acme/app'] });
  const external = await server.call('POST', `${FLOWS}/approvals`, {
    taskId: 't1', requestedBy: 'dev@acme.io', context: {}, repositoryIdentifier: 'acme/app', callback: { type: 'slack', channel: 'C0OTHER', threadTs: '1700000000.000200' },
  }, app);
  expect(external.status).toBe(403);
  expect(await count("approvals where task_id = 't1'")).toBe(0);
});

test('a scheduled run\'s requester is the schedule\'s author: they cannot approve what their schedule asks for', async () => {
  const created = await server.call('POST', '/api/v1/schedules', { name: 'gate-every-second', flowType: 'gated', cron: '* * * * * *', repositoryIdentifier: 'acme/app', payload: { target: target.url } }, tokens.owner);
  expect(created.status).toBe(201);
  const run = await eventually(async () => {
    const runs = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&includeScheduled=true&triggeredBy=cron`)).body.runs;
    return runs[0];
  }, 30_000, 'a scheduled run');
  expect(await server.call('POST', `${FLOWS}/schedules/gate-every-second/pause`)).toMatchObject({ status: 200 });
  const approval = await pendingApproval(run.id);
  expect(approval.requestedBy).toBe('owner@acme.io');
  const self = await approve(approval.id, 'owner');
  expect(self.status).toBe(403);
  expect(self.body.message).toBe('owner@acme.io requested this and may not approve their own request');
  // Who last changed the schedule is its requester from then on.
  await server.call('POST', `${FLOWS}/schedules/gate-every-second/resume`);
  const after = (await server.call('GET', `${FLOWS}/schedules?repositoryIdentifier=acme/app`)).body.schedules.find((s: any) => s.name === 'gate-every-second');
  expect(after.requestedBy).toBe('token:admin');
  await server.call('POST', `${FLOWS}/schedules/gate-every-second/pause`);
  await server.call('DELETE', '/api/v1/schedules/gate-every-second');
  expect((await waitForRun(server, run.id, ['Suspended', 'Completed', 'Failed', 'Cancelled'])).status).toBe('Suspended');
});
