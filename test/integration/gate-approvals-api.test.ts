import pg from 'pg';
import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

// Gate approvals of the workflow platform API: the approvals every door decides, decided here as
// the caller's email through the same core, and seen the same in the sfp API.
let server: TestServer;
let db: pg.Pool;
const t: Record<string, string> = {};
const flows: Record<string, string> = {};
const AP = '/api/v1/approvals';
const PROD = { provider: 'github', owners: ['owner@acme.io', 'lead@acme.io'], members: ['dev@acme.io', 'qa@acme.io'], namespace: 'production', approverGroups: { release: ['lead@acme.io', 'qa@acme.io'] } };

const FLOWS: Record<string, string> = {
  gate: `
  - { name: approve, type: flow.approval, properties: { message: "Deploy {{ inputs.version }}?" } }
  - { name: ship, type: util.log, dependsOn: [approve], properties: { message: "shipping, approved by {{ outputs.approve.approvedBy[0] }}" } }`,
  quorum: `
  - { name: approve, type: flow.approval, properties: { approvers: "group:release", quorum: 2 } }`,
  listed: `
  - { name: approve, type: flow.approval, properties: { approvers: [dev@acme.io, lead@acme.io] } }
  - { name: after, type: util.log, dependsOn: [approve], properties: { message: never } }`,
};

beforeAll(async () => {
  server = await startTestServer();
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/prod', PROD);
  await createProject(server, 'acme/other', { namespace: 'other-space' });
  for (const [name, email] of [['owner', 'owner@acme.io'], ['lead', 'lead@acme.io'], ['dev', 'dev@acme.io'], ['qa', 'qa@acme.io']]) t[name] = await createToken(server, { name, role: 'member', email });
  t.robot = await createToken(server, { name: 'robot', role: 'member' });
  t.app = await createToken(server, { name: 'pipeline', role: 'application' });
  t.viewer = await createToken(server, { name: 'dashboard', role: 'viewer' });
  t.elsewhere = await createToken(server, { name: 'elsewhere', role: 'member', email: 'owner@acme.io', projects: ['acme/other'] });
  for (const [name, tasks] of Object.entries(FLOWS)) {
    const r = await server.call('POST', '/api/v1/flows', { yamlContent: `name: ${name}\nnamespace: production\ninputs:\n  version: "1.0"\ntasks:${tasks}\n` });
    expect(r.status).toBe(201);
    flows[name] = r.body.id;
  }
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

const expectError = (r: { status: number; body: any }, status: number, code: string, error?: string | RegExp) => {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  if (error) expect(r.body.error).toMatch(error);
};

/** Executes a flow as `token` and waits for its approval. */
async function gated(flow: string, token = t.dev, inputs: Record<string, unknown> = {}) {
  const started = await server.call('POST', `/api/v1/flows/${flows[flow]}/execute`, { inputs }, token);
  expect(started.status).toBe(202);
  const executionId = started.body.executionId as string;
  const approval = await eventually(async () => (await server.call('GET', `${AP}?executionId=${executionId}`)).body?.[0], 20_000, `the approval of ${flow}`);
  return { executionId, approval };
}
const decide = (id: string, verdict: 'approve' | 'reject', body: unknown, token?: string | null) => server.call('POST', `${AP}/${id}/${verdict}`, body, token);
const execution = (id: string) => eventually(async () => {
  const r = (await server.call('GET', `/api/v1/executions/${id}`)).body;
  return ['SUCCESS', 'FAILED', 'CANCELLED'].includes(r?.execution?.status) ? r : undefined;
}, 20_000, `execution ${id} ending`);

describe('an approval of a flow document', () => {
  let executionId: string;
  let approval: any;
  beforeAll(async () => ({ executionId, approval } = await gated('gate', t.dev, { version: '1.4.2' })));

  test('GET → the approval: statuses in this API\'s words, approvers resolved now', async () => {
    const r = await server.call('GET', `${AP}/${approval.id}`, undefined, t.viewer);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      id: approval.id, executionId, flowId: flows.gate, namespace: 'production', taskName: 'approve', status: 'PENDING', message: 'Deploy 1.4.2?',
      approvers: ['owner@acme.io', 'lead@acme.io'], approversFrom: 'owners', quorum: 1, allowSelfApproval: false, decisions: [],
      requestedBy: 'dev@acme.io', requestedAt: expect.stringMatching(/\.\d{3}Z$/), expiresAt: expect.any(String), decidedAt: null, decidedBy: null,
    });
    // The project's owners as they are now.
    await createProject(server, 'acme/prod', { ...PROD, owners: [...PROD.owners, 'new@acme.io'] });
    expect((await server.call('GET', `${AP}/${approval.id}`)).body.approvers).toEqual(['owner@acme.io', 'lead@acme.io', 'new@acme.io']);
    await createProject(server, 'acme/prod', PROD);
  });

  test('callers without a person to decide as: no email → 403 naming the account; application and viewer tokens → 403', async () => {
    expectError(await decide(approval.id, 'approve', {}, t.robot), 403, 'forbidden', /^account robot has no email; an admin must set one$/);
    expectError(await decide(approval.id, 'approve', {}), 403, 'forbidden', /^account admin has no email; an admin must set one$/);
    expectError(await decide(approval.id, 'approve', {}, t.app), 403, 'forbidden');
    expectError(await decide(approval.id, 'approve', {}, t.viewer), 403, 'forbidden');
    expectError(await decide(approval.id, 'approve', {}, null), 401, 'authentication_required');
    expect((await server.call('GET', `${AP}/${approval.id}`)).body.status).toBe('PENDING');
  });

  test('approve → 200, the approval after the vote; the execution completes; deciding again → 409 with the status', async () => {
    const r = await decide(approval.id, 'approve', { comment: 'ok' }, t.owner);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id: approval.id, status: 'APPROVED', decidedBy: 'owner@acme.io', decidedAt: expect.any(String),
      decisions: [{ by: 'owner@acme.io', verdict: 'APPROVE', comment: 'ok', at: expect.any(String), via: 'rest' }],
    });
    const done = await execution(executionId);
    expect(done.execution.status).toBe('SUCCESS');
    expect(done.tasks.map((x: any) => [x.taskName, x.status])).toEqual([['approve', 'SUCCESS'], ['ship', 'SUCCESS']]);
    expect(JSON.parse(done.tasks[0].outputs)).toMatchObject({ approvedBy: ['owner@acme.io'] });
    const again = await decide(approval.id, 'reject', { reason: 'too late' }, t.lead);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'approval is already APPROVED', code: 'conflict', status: 'APPROVED' });
  });

  test('the same approval in the sfp API, the decision through door rest', async () => {
    const sfp = (await server.call('GET', `/sfp/api/flows/approvals/${approval.id}`)).body;
    expect(sfp).toMatchObject({ id: approval.id, executionId, status: 'approved', resolvedBy: 'owner@acme.io', decisions: [expect.objectContaining({ email: 'owner@acme.io', verdict: 'approve', reason: 'ok', door: 'rest' })] });
  });
});

test('quorum 2 from a group: one vote stays PENDING (one person counts once), the second approves', async () => {
  const { executionId, approval } = await gated('quorum');
  expect(approval).toMatchObject({ approversFrom: 'group:release', approvers: ['lead@acme.io', 'qa@acme.io'], quorum: 2 });
  const first = await decide(approval.id, 'approve', {}, t.lead);
  expect(first.status).toBe(200);
  expect(first.body).toMatchObject({ status: 'PENDING', decidedAt: null, decisions: [{ by: 'lead@acme.io', verdict: 'APPROVE', comment: null, via: 'rest' }] });
  const twice = await decide(approval.id, 'approve', { comment: 'me again' }, t.lead);
  expect(twice.status).toBe(200);
  expect(twice.body.status).toBe('PENDING');
  expect(twice.body.decisions).toHaveLength(1);
  const second = await decide(approval.id, 'approve', {}, t.qa);
  expect(second.body).toMatchObject({ status: 'APPROVED', decisions: [{ by: 'lead@acme.io' }, { by: 'qa@acme.io' }] });
  expect((await execution(executionId)).execution.status).toBe('SUCCESS');
});

describe('refusals and rejection', () => {
  let executionId: string;
  let approval: any;
  beforeAll(async () => ({ executionId, approval } = await gated('listed')));

  test('own request and not an approver → 403 with the core\'s reason, audited; still PENDING', async () => {
    expect(approval).toMatchObject({ approversFrom: 'list', approvers: ['dev@acme.io', 'lead@acme.io'], requestedBy: 'dev@acme.io' });
    expectError(await decide(approval.id, 'approve', {}, t.dev), 403, 'forbidden', 'dev@acme.io requested this and may not approve their own request');
    expectError(await decide(approval.id, 'approve', {}, t.qa), 403, 'forbidden', /^qa@acme\.io is not an approver of this request/);
    expect((await server.call('GET', `${AP}/${approval.id}`)).body).toMatchObject({ status: 'PENDING', decisions: [] });
    const { rows } = await db.query(`select actor, door, details->>'reason' as reason from audit_events where action = 'approval.refused' and target_id = $1 order by at`, [approval.id]);
    expect(rows).toEqual([
      { actor: 'dev@acme.io', door: 'rest', reason: 'dev@acme.io requested this and may not approve their own request' },
      { actor: 'qa@acme.io', door: 'rest', reason: expect.stringMatching(/not an approver/) },
    ]);
  });

  test('reject needs a reason (400); `comment` is read as one; the execution fails', async () => {
    expectError(await decide(approval.id, 'reject', {}, t.lead), 400, 'bad_request');
    expectError(await decide(approval.id, 'reject', undefined, t.lead), 400, 'bad_request');
    expectError(await decide(approval.id, 'reject', { reason: '   ' }, t.lead), 400, 'bad_request');
    expectError(await decide(approval.id, 'reject', { reason: 'a\u0000b' }, t.lead), 400, 'bad_request');
    const r = await decide(approval.id, 'reject', { comment: 'not this week' }, t.lead);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'REJECTED', decidedBy: 'lead@acme.io', decisions: [{ by: 'lead@acme.io', verdict: 'REJECT', comment: 'not this week', via: 'rest' }] });
    const done = await execution(executionId);
    expect(done.execution.status).toBe('FAILED');
    expect(done.tasks[0]).toMatchObject({ taskName: 'approve', status: 'FAILED', error: expect.stringMatching(/rejected by lead@acme\.io: not this week/) });
    expect((await decide(approval.id, 'approve', {}, t.lead)).body).toEqual({ error: 'approval is already REJECTED', code: 'conflict', status: 'REJECTED' });
  });
});

test('a cancelled execution\'s approval is CANCELLED; an expired one is EXPIRED and refuses decisions (409)', async () => {
  const cancelled = await gated('gate');
  expect((await server.call('POST', `/api/v1/executions/${cancelled.executionId}/cancel`)).status).toBe(200);
  await eventually(async () => ((await server.call('GET', `${AP}/${cancelled.approval.id}`)).body.status === 'CANCELLED' ? true : undefined), 10_000, 'CANCELLED');
  expect((await decide(cancelled.approval.id, 'approve', {}, t.owner)).body).toEqual({ error: 'approval is already CANCELLED', code: 'conflict', status: 'CANCELLED' });

  const expiring = await gated('gate');
  await db.query(`update approvals set expires_at = now() - interval '1 second' where id = $1`, [expiring.approval.id]);
  expect((await server.call('GET', `${AP}/${expiring.approval.id}`)).body.status).toBe('EXPIRED');
  expect((await decide(expiring.approval.id, 'approve', {}, t.owner)).body).toEqual({ error: 'approval is already EXPIRED', code: 'conflict', status: 'EXPIRED' });
  expect((await execution(expiring.executionId)).execution.status).toBe('FAILED');
});

describe('list and visibility', () => {
  let pending: { executionId: string; approval: any };
  beforeAll(async () => { pending = await gated('listed'); });

  test('filters: status (comma list), executionId, namespace; newest first', async () => {
    const all = (await server.call('GET', AP)).body as any[];
    expect(all.length).toBeGreaterThanOrEqual(6);
    const times = all.map((a) => Date.parse(a.requestedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const open = (await server.call('GET', `${AP}?status=PENDING`)).body as any[];
    expect(open.map((a) => a.id)).toContain(pending.approval.id);
    expect(open.every((a) => a.status === 'PENDING')).toBe(true);
    const decided = (await server.call('GET', `${AP}?status=approved,REJECTED`)).body as any[];
    expect(new Set(decided.map((a) => a.status))).toEqual(new Set(['APPROVED', 'REJECTED']));
    expect((await server.call('GET', `${AP}?status=EXPIRED`)).body.map((a: any) => a.status)).toEqual(['EXPIRED']);
    expect((await server.call('GET', `${AP}?executionId=${pending.executionId}`)).body.map((a: any) => a.id)).toEqual([pending.approval.id]);
    expect((await server.call('GET', `${AP}?executionId=not-an-id`)).body).toEqual([]);
    expect((await server.call('GET', `${AP}?namespace=production`)).body).toHaveLength(all.length);
    expect((await server.call('GET', `${AP}?namespace=other-space`)).body).toEqual([]);
    expectError(await server.call('GET', `${AP}?namespace=nowhere`), 404, 'not_found');
    expectError(await server.call('GET', `${AP}?status=DONE`), 400, 'bad_request');
    expectError(await server.call('GET', `${AP}?mine=yes`), 400, 'bad_request');
  });

  test('mine=true: the pending approvals the caller may approve now', async () => {
    const mine = async (token: string) => ((await server.call('GET', `${AP}?mine=true`, undefined, token)).body as any[]).map((a) => a.id);
    expect(await mine(t.lead)).toEqual([pending.approval.id]);
    // Its requester may not approve it; nobody else is named.
    expect(await mine(t.dev)).toEqual([]);
    expect(await mine(t.qa)).toEqual([]);
    expect(await mine(t.robot)).toEqual([]);
    expect(await mine(t.viewer)).toEqual([]);
    const owners = await gated('gate', t.dev);
    expect(await mine(t.owner)).toEqual([owners.approval.id]);
    expect((await mine(t.lead)).sort()).toEqual([pending.approval.id, owners.approval.id].sort());
  });

  test('another namespace\'s approvals → 404 and left out of lists; unknown ids → 404', async () => {
    expectError(await server.call('GET', `${AP}/${pending.approval.id}`, undefined, t.elsewhere), 404, 'not_found');
    expectError(await decide(pending.approval.id, 'approve', {}, t.elsewhere), 404, 'not_found');
    expect((await server.call('GET', AP, undefined, t.elsewhere)).body).toEqual([]);
    expectError(await server.call('GET', `${AP}/0193c2aa-0000-7000-8000-000000000000`), 404, 'not_found');
    expectError(await server.call('GET', `${AP}/nope`), 404, 'not_found');
    expectError(await decide('0193c2aa-0000-7000-8000-000000000000', 'approve', {}, t.lead), 404, 'not_found');
  });
});
