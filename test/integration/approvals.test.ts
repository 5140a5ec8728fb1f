import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

let server: TestServer;
const target = new Recorder();
const FLOWS = '/sfp/api/flows';
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await target.start();
  server = await startTestServer();
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'] });
  for (const who of ['owner', 'second', 'dev', 'alice', 'bob', 'carol']) tokens[who] = await createToken(server, { name: who, role: who === 'owner' ? 'owner' : 'member', email: `${who}@acme.io` });
  tokens.app = await createToken(server, { name: 'ci', role: 'application' });
  tokens.anonymousMember = await createToken(server, { name: 'no-email', role: 'member' });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

/** The project's approver group `gate`, which the `gated-*` fixture flows name as their approvers. */
async function setGate(...people: string[]) {
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'], approverGroups: { gate: people.map((p) => `${p}@acme.io`) } });
}

/** Starts a gated flow as `as` (a person's token, so they are the requester) and waits for its approval. */
async function gated(params: Record<string, unknown> = {}, as = 'dev', flow = 'gated') {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: flow, repositoryIdentifier: 'acme/app', target: target.url, ...params } }, tokens[as]);
  expect(r.status).toBe(201);
  const approval = await eventually(async () => {
    const a = await server.call('GET', `${FLOWS}/approvals/${r.body.id}`);
    return a.status === 200 ? a.body : undefined;
  });
  await eventually(async () => ((await server.call('GET', `${FLOWS}/${r.body.id}`)).body.status === 'Suspended' ? true : undefined));
  return { runId: r.body.id as string, approval };
}
const approve = (id: string, who: string) => server.call('POST', `${FLOWS}/approvals/${id}/approve`, { approver: who, approverEmail: `${who}@acme.io` }, tokens[who]);
const reject = (id: string, who: string, reason?: string) => server.call('POST', `${FLOWS}/approvals/${id}/reject`, { rejector: who, rejectorEmail: `${who}@acme.io`, reason }, tokens[who]);

test('a run is suspended at its approval; an owner approves; the run continues and completes', async () => {
  const { runId, approval } = await gated();
  expect(approval).toMatchObject({ status: 'pending', requestedBy: 'dev@acme.io', approvers: ['owner@acme.io', 'second@acme.io'], approversSource: 'owners', quorum: 1, executionId: runId });
  expect(Date.parse(approval.expiresAt) - Date.parse(approval.requestedAt)).toBe(24 * 3_600_000);
  const pending = await server.call('GET', `${FLOWS}/approvals/pending`);
  expect(pending.body.approvals.map((a: any) => a.id)).toContain(approval.id);

  const r = await approve(runId, 'owner');
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ id: approval.id, status: 'approved', resolvedBy: 'owner@acme.io' });
  const run = await waitForRun(server, runId);
  expect(run.status).toBe('Completed');
  expect(run.steps.find((s: any) => s.ref === 'approve').output).toMatchObject({ approvalId: approval.id, approvedBy: ['owner@acme.io'] });
  expect(target.to('/after').at(-1)!.json).toEqual({ approvedBy: ['owner@acme.io'] });
  const again = await approve(approval.id, 'second');
  expect(again.status).toBe(409);
  expect(again.body).toMatchObject({ statusCode: 409, message: 'Approval request already approved', approval: { status: 'approved' } });
});

test('one rejection rejects with its reason and fails the run', async () => {
  await setGate('alice', 'bob');
  const { runId, approval } = await gated({}, 'dev', 'gated-quorum');
  expect((await approve(approval.id, 'alice')).body).toMatchObject({ status: 'pending', approvalsReceived: 1 });
  const r = await reject(approval.id, 'bob', 'not during the freeze');
  expect(r.body).toMatchObject({ status: 'rejected', resolvedBy: 'bob@acme.io', reason: 'not during the freeze' });
  const run = await waitForRun(server, runId);
  expect(run.status).toBe('Failed');
  expect(run.error).toMatch(/approval rejected by bob@acme.io: not during the freeze/);
  expect(target.requests.filter((q) => q.path === '/after' && (q.json as any).approvedBy?.includes('alice@acme.io'))).toHaveLength(0);
});

test('quorum 2: the same approver twice still pending, a second approver approves', async () => {
  await setGate('alice', 'bob', 'carol');
  const { runId, approval } = await gated({}, 'dev', 'gated-quorum');
  expect((await approve(approval.id, 'alice')).body).toMatchObject({ status: 'pending', approvalsReceived: 1 });
  expect((await approve(approval.id, 'alice')).body).toMatchObject({ status: 'pending', approvalsReceived: 1 });
  const done = await approve(approval.id, 'carol');
  expect(done.body).toMatchObject({ status: 'approved', approvalsReceived: 2 });
  const run = await waitForRun(server, runId);
  expect(run.steps.find((s: any) => s.ref === 'approve').output.approvedBy).toEqual(['alice@acme.io', 'carol@acme.io']);
});

test('who may decide: 403 with the rule that refused, each refusal audited', async () => {
  await setGate('alice', 'dev');
  const { approval } = await gated({}, 'dev', 'gated-group');
  const self = await approve(approval.id, 'dev');
  expect(self.status).toBe(403);
  expect(self.body.message).toBe('dev@acme.io requested this and may not approve their own request');
  const stranger = await approve(approval.id, 'bob');
  expect(stranger.body.message).toMatch(/bob@acme.io is not an approver of this request/);
  const noEmail = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'x', approverEmail: 'alice@acme.io' }, tokens.anonymousMember);
  expect(noEmail.status).toBe(403);
  expect(noEmail.body.message).toMatch(/not bound to a person/);
  const mismatch = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'Alice', approverEmail: 'alice@acme.io' }, tokens.bob);
  expect(mismatch.status).toBe(403);
  expect(mismatch.body.message).toMatch(/approverEmail alice@acme.io does not match the person of this token \(bob@acme.io\)/);
  const app = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'ci', approverEmail: 'ci@acme.io' }, tokens.app);
  expect(app.body.message).toBe('Forbidden - Requires role: owner, member');
  const badBody = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: '' }, tokens.alice);
  expect(badBody.status).toBe(400);
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('pending');
  const audit = await server.services.audit.list({ targetType: 'approval', targetId: approval.id });
  expect(audit.filter((a) => a.action === 'approval.refused')).toHaveLength(4);
  expect((await server.call('POST', `${FLOWS}/approvals/nope/approve`, { approver: 'a', approverEmail: 'alice@acme.io' }, tokens.alice)).status).toBe(404);
  await approve(approval.id, 'alice');
});

test('self-approval is allowed when the flow says so', async () => {
  await setGate('dev');
  const { approval, runId } = await gated({}, 'dev', 'gated-self');
  expect((await approve(approval.id, 'dev')).body.status).toBe('approved');
  expect((await waitForRun(server, runId)).status).toBe('Completed');
});

test('the requester cannot write the approval policy into the payload: their approvers, quorum and self-approval are ignored', async () => {
  await setGate('alice', 'dev');
  const { approval } = await gated({ approvers: ['dev@acme.io'], quorum: 1, allowSelfApproval: true, selfApproval: true }, 'dev', 'gated-group');
  expect(approval).toMatchObject({ approvers: ['alice@acme.io', 'dev@acme.io'], allowSelfApproval: false, quorum: 1 });
  const self = await approve(approval.id, 'dev');
  expect(self.status).toBe(403);
  expect(self.body.message).toBe('dev@acme.io requested this and may not approve their own request');
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', decisions: [] });
  expect((await approve(approval.id, 'alice')).body.status).toBe('approved');
});

test('an approval nobody could decide fails the run at once: unknown group, empty group, quorum out of reach without the requester', async () => {
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'], approverGroups: {} });
  const failsWith = async (flow: string, as: string, error: RegExp) => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: flow, repositoryIdentifier: 'acme/app', target: target.url } }, tokens[as]);
    const run = await waitForRun(server, r.body.id);
    expect(run.status).toBe('Failed');
    expect(run.steps.find((s: any) => s.ref === 'approve').error).toMatch(error);
    expect((await server.call('GET', `${FLOWS}/approvals/${r.body.id}`)).status).toBe(404);
  };
  await failsWith('gated-group', 'dev', /approver group "gate" is not defined on project acme\/app/);
  await setGate();
  await failsWith('gated-group', 'dev', /approver group "gate" of project acme\/app is empty/);
  // Two needed, but of alice and dev only alice may approve dev's request.
  await setGate('alice', 'dev');
  await failsWith('gated-quorum', 'dev', /quorum 2 can never be reached: 1 possible approver\(s\) other than the requester \(alice@acme.io\)/);
});

test('an approval expires: approval expired, step failed "approval expired"', async () => {
  await setGate('alice');
  const { runId, approval } = await gated({ timeoutHours: 0.0005 }, 'dev', 'gated-group');
  const run = await waitForRun(server, runId);
  expect(run.status).toBe('Failed');
  expect(run.steps.find((s: any) => s.ref === 'approve').error).toBe('approval expired');
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('expired');
  expect((await approve(approval.id, 'alice')).status).toBe(409);
});

test('cancelling a suspended run cancels its pending approval', async () => {
  const { runId, approval } = await gated();
  expect((await server.call('POST', `${FLOWS}/${runId}/cancel`)).status).toBe(200);
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'cancelled', resolvedBy: 'token:admin' });
  expect((await approve(approval.id, 'owner')).status).toBe(409);
});

test('race: 50 concurrent approve/reject calls yield exactly one decision and one wake-up', async () => {
  const people = ['alice', 'bob', 'carol'];
  await setGate(...people);
  const { runId, approval } = await gated({}, 'dev', 'gated-group');
  const calls = Array.from({ length: 50 }, (_, i) => (i % 2 ? approve(approval.id, people[i % 3]) : reject(approval.id, people[i % 3], `no ${i}`)));
  const results = await Promise.all(calls);
  const ok = results.filter((r) => r.status === 200);
  expect(ok).toHaveLength(1);
  expect(results.filter((r) => r.status === 409)).toHaveLength(49);
  const final = (await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body;
  expect(final.decisions).toHaveLength(1);
  expect(final.status).toBe(ok[0].body.status);
  await waitForRun(server, runId);
  const logs = (await server.call('GET', `${FLOWS}/${runId}/logs`)).body.logs.map((l: any) => l.message);
  expect(logs.filter((m: string) => /^Approval (approved|rejected) by/.test(m))).toHaveLength(1);
  const decided = (await server.services.audit.list({ targetType: 'approval', targetId: approval.id })).filter((a) => /approval\.(approved|rejected)$/.test(a.action));
  expect(decided).toHaveLength(1);
});

test('race: votes arriving together toward a quorum of two all count; none is lost, the approval settles once', async () => {
  const people = ['alice', 'bob', 'carol'];
  await setGate(...people);
  const { runId, approval } = await gated({}, 'dev', 'gated-quorum');
  // Each person clicks four times at once: a decision written over another's would lose a vote.
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => approve(approval.id, people[i % 3])));
  const final = (await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body;
  expect(final.status).toBe('approved');
  expect(final.decisions).toHaveLength(2);
  expect(new Set(final.decisions.map((d: any) => d.email)).size).toBe(2);
  // Those who counted got 200 (a vote, then the approval); anyone after the quorum, 409.
  const counted = results.filter((r) => r.status === 200);
  expect(counted.some((r) => r.body.status === 'approved')).toBe(true);
  expect(results.every((r) => r.status === 200 || (r.status === 409 && r.body.message === 'Approval request already approved'))).toBe(true);
  const third = people.find((p) => !final.decisions.some((d: any) => d.email === `${p}@acme.io`))!;
  expect(results.filter((_, i) => people[i % 3] === third).every((r) => r.status === 409)).toBe(true);
  expect((await waitForRun(server, runId)).status).toBe('Completed');
  const audited = await server.services.audit.list({ targetType: 'approval', targetId: approval.id });
  expect(audited.filter((a) => a.action === 'approval.approved')).toHaveLength(1);
});

test('identity directory and email-by-github', async () => {
  expect((await server.call('PUT', '/api/v1/identities/Alice@acme.io', { githubLogin: 'alice-gh', slackUserId: 'U123ABC', adoUniqueName: 'alice@acme.io' })).status).toBe(201);
  expect((await server.call('GET', `${FLOWS}/users/email-by-github/Alice-GH`, undefined, tokens.dev)).body).toEqual({ username: 'Alice-GH', email: 'alice@acme.io' });
  expect((await server.call('GET', `${FLOWS}/users/email-by-github/nobody`)).status).toBe(404);
  const clash = await server.call('PUT', '/api/v1/identities/bob@acme.io', { githubLogin: 'ALICE-gh' });
  expect(clash.status).toBe(409);
  expect((await server.call('PUT', '/api/v1/identities/bob@acme.io', { slackUserId: 'nope' })).body.details[0].field).toBe('slackUserId');
  expect((await server.call('GET', '/api/v1/identities')).body.identities.map((i: any) => i.email)).toEqual(['alice@acme.io']);
  expect((await server.call('GET', '/api/v1/identities', undefined, tokens.dev)).status).toBe(403);
  expect((await server.call('DELETE', '/api/v1/identities/alice@acme.io')).status).toBe(204);
  expect((await server.call('GET', '/api/v1/identities/alice@acme.io')).status).toBe(404);
});

test('approvals are found by the thread they were posted to', async () => {
  const hook = 'http://127.0.0.1:9/unused';
  // A REST caller may name only its own project's threads: its repository, its Slack channel.
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'], slackChannel: 'C42' });
  const start = (callback: unknown) => server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: target.url }, callback }, tokens.dev);
  const gh = await start({ type: 'github', github: { repositoryIdentifier: 'acme/app', issueNumber: 12 } });
  const sl = await start({ type: 'slack', slack: { channel: 'C42', threadTs: '1700000000.000100' } });
  const ado = await start({ type: 'azure-devops', azureDevOps: { repositoryIdentifier: 'acme/app', workItemId: 77 } });
  for (const r of [gh, sl, ado]) expect(r.status).toBe(201);
  const byGh = await eventually(async () => { const r = await server.call('GET', `${FLOWS}/approvals/by-github/acme/app/12`); return r.status === 200 ? r : undefined; });
  expect(byGh.body.executionId).toBe(gh.body.id);
  expect((await server.call('GET', `${FLOWS}/approvals/by-github/${encodeURIComponent('acme/app')}/12`)).body.executionId).toBe(gh.body.id);
  const bySl = await eventually(async () => { const r = await server.call('GET', `${FLOWS}/approvals/by-slack/C42/1700000000.000100`); return r.status === 200 ? r : undefined; });
  expect(bySl.body.executionId).toBe(sl.body.id);
  const byAdo = await eventually(async () => { const r = await server.call('GET', `${FLOWS}/approvals/by-azure-devops?repositoryIdentifier=acme/app&workItemId=77`); return r.status === 200 ? r : undefined; });
  expect(byAdo.body.executionId).toBe(ado.body.id);
  expect((await server.call('GET', `${FLOWS}/approvals/by-github/acme/app/13`)).status).toBe(404);
  expect((await server.call('GET', `${FLOWS}/approvals/by-slack/C42/1`)).status).toBe(404);
  expect((await server.call('GET', `${FLOWS}/approvals/by-azure-devops?repositoryIdentifier=acme/app`)).status).toBe(400);
  expect((await server.call('GET', `${FLOWS}/approvals/by-github/acme/app/x`)).status).toBe(400);
  void hook;
  for (const r of [gh, sl, ado]) await server.call('POST', `${FLOWS}/${r.body.id}/cancel`);
});

test('for a child flow the approval shows its parent; the orchestrator shows each child approval', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated-release', repositoryIdentifier: 'acme/app', target: target.url, items: ['a', 'b'] } }, tokens.dev);
  const view = await eventually(async () => {
    const v = await server.call('GET', `${FLOWS}/approvals/${r.body.id}`);
    return v.status === 200 && v.body.children?.every((c: any) => c.approval?.status === 'pending') ? v.body : undefined;
  });
  expect(view).toMatchObject({ id: r.body.id, status: 'pending' });
  expect(view.children).toHaveLength(2);
  const child = view.children[0];
  const childView = (await server.call('GET', `${FLOWS}/approvals/${child.approval.id}`)).body;
  expect(childView.parentExecution).toMatchObject({ id: r.body.id, taskType: 'gated-release', triggeredBy: 'dev@acme.io' });
  for (const c of view.children) expect((await approve(c.approval.id, 'owner')).body.status).toBe('approved');
  expect((await waitForRun(server, r.body.id)).status).toBe('Completed');
  expect((await server.call('GET', `${FLOWS}/approvals/${r.body.id}`)).body.children.map((c: any) => c.approval.status)).toEqual(['approved', 'approved']);
});

test('a step\'s approval is opened once: a replay gets the same one, audited once, even when the policy has changed since', async () => {
  const { runId, approval } = await gated();
  const input = { runId, stepRef: 'approve', repositoryIdentifier: 'acme/app', requestedBy: 'dev@acme.io', callback: null };
  const spec = { approvers: null, quorum: 1, allowSelfApproval: false, timeoutHours: 24, context: {} };
  const again = await server.services.approvals.openForStep(input, spec, new Date());
  expect(again).toMatchObject({ id: approval.id, status: 'pending', runId, stepRef: 'approve', requestedBy: 'dev@acme.io' });
  expect(again.requestedAt).toBeInstanceOf(Date);
  // The group no longer exists: a replay still gets its approval; a new step is refused with the reason.
  const gone = { ...spec, approvers: ['group:nobody'] };
  expect((await server.services.approvals.openForStep(input, gone, new Date())).id).toBe(approval.id);
  await expect(server.services.approvals.openForStep({ ...input, stepRef: 'other' }, gone, new Date())).rejects.toThrow('approver group "nobody" is not defined on project acme/app');
  const requested = (await server.services.audit.list({ targetType: 'approval', targetId: approval.id })).filter((a) => a.action === 'approval.requested');
  expect(requested).toHaveLength(1);
  expect(requested[0]).toMatchObject({ actor: 'dev@acme.io', door: 'engine', details: { runId, step: 'approve' } });

  // A step opened for the first time through the same call: one approval, one audit record.
  const fresh = await server.services.approvals.openForStep({ ...input, stepRef: 'second-gate' }, spec, new Date());
  expect(fresh).toMatchObject({ runId, stepRef: 'second-gate', status: 'pending', quorum: 1 });
  expect(fresh.id).not.toBe(approval.id);
  expect((await server.services.audit.list({ targetType: 'approval', targetId: fresh.id })).map((a) => a.action)).toEqual(['approval.requested']);
});
