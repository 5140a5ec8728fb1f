import pg from 'pg';
import { verifySignature } from '../../src/core/signing.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, type TestServer } from '../support/server.js';

const SECRET = 'whsec-test-0123456789abcdef';
const PROJECT_SECRET = 'project-secret-0123456789';
let server: TestServer;
const hook = new Recorder();
const FLOWS = '/sfp/api/flows';
let alice: string;

beforeAll(async () => {
  await hook.start();
  let failures = 0;
  hook.respond((r) => (r.path === '/flaky' && failures++ < 2 ? { status: 502 } : undefined));
  server = await startTestServer({ env: { FLOWGATE_WEBHOOK_SECRET: SECRET, FLOWGATE_SWEEP_INTERVAL_MS: '300' } });
  await createProject(server, 'acme/app', { owners: ['alice@acme.io'] });
  await createProject(server, 'acme/signed', { owners: ['alice@acme.io'], webhookSecret: PROJECT_SECRET });
  alice = await createToken(server, { name: 'alice', role: 'member', email: 'alice@acme.io' });
});
afterAll(async () => {
  await server?.stop();
  await hook.stop();
});

const create = (body: Record<string, unknown>, token?: string) => server.call('POST', `${FLOWS}/approvals`, {
  taskId: 'job-1', requestedBy: 'bob@acme.io', context: { taskType: 'deploy', username: 'bob', durationMinutes: 30 }, ...body,
}, token);
/** A decision is signed for approval.decision only: it cannot pass for a run notice. */
const verify = (body: string, header: string | string[] | undefined, secret: string) =>
  verifySignature(header as string, body, secret, 'approval.decision') && !verifySignature(header as string, body, secret, 'run.notice');

test('an external approval is created, decided over REST, and its decision delivered signed to the webhook', async () => {
  const r = await create({ repositoryIdentifier: 'acme/app', hatchetRunId: 'h-1', hatchetEventKey: 'approval:h-1', callback: { type: 'webhook', url: `${hook.url}/decisions` } });
  expect(r.status).toBe(201);
  expect(r.body).toMatchObject({ status: 'pending', requestedBy: 'bob@acme.io', approvers: ['alice@acme.io'], taskId: 'job-1', engine: 'hatchet', engineRunId: 'h-1' });
  expect(r.body.context).toMatchObject({ taskType: 'deploy', callback: { type: 'webhook' } });
  expect(JSON.stringify(r.body)).not.toContain('/decisions');
  const polled = await server.call('GET', `${FLOWS}/approvals/${r.body.id}`);
  expect(polled.body.status).toBe('pending');

  const decided = await server.call('POST', `${FLOWS}/approvals/${r.body.id}/approve`, { approver: 'Alice', approverEmail: 'alice@acme.io' }, alice);
  expect(decided.body.status).toBe('approved');
  await hook.waitFor((reqs) => reqs.some((q) => q.path === '/decisions'));
  const delivery = hook.to('/decisions')[0];
  expect(verify(delivery.body, delivery.headers['x-flowgate-signature-256'], SECRET)).toBe(true);
  expect(delivery.json).toMatchObject({ event: 'approval.decided', approval: { id: r.body.id, status: 'approved', resolvedBy: 'alice@acme.io', taskId: 'job-1' } });
});

test('a decision committed whose delivery never started (the process died in between) is delivered by the sweep, once', async () => {
  const r = await create({ repositoryIdentifier: 'acme/app', callback: { type: 'webhook', url: `${hook.url}/orphaned` } });
  expect(r.status).toBe(201);
  // What a process that died right after committing the decision leaves behind: the row, no delivery.
  const db = new pg.Client({ connectionString: server.services.config.databaseUrl });
  await db.connect();
  try {
    await db.query(`update approvals set status = 'approved', resolved_by = 'alice@acme.io', resolved_at = now() - interval '15 seconds',
      decisions = jsonb_build_array(jsonb_build_object('email', 'alice@acme.io', 'name', 'Alice', 'verdict', 'approve', 'reason', null, 'door', 'rest', 'at', now()))
      where id = $1`, [r.body.id]);
  } finally {
    await db.end();
  }
  await hook.waitFor((reqs) => reqs.some((q) => q.path === '/orphaned'), 20_000);
  expect(hook.to('/orphaned')[0].json).toMatchObject({ event: 'approval.decided', approval: { id: r.body.id, status: 'approved', resolvedBy: 'alice@acme.io' } });
  // Later sweeps find the delivery started and start nothing more.
  await new Promise((res) => setTimeout(res, 1_000));
  expect(hook.to('/orphaned')).toHaveLength(1);
});

test('a refused delivery is retried with backoff until accepted; the project secret signs it', async () => {
  const r = await create({ repositoryIdentifier: 'acme/signed', callback: { type: 'webhook', url: `${hook.url}/flaky` } });
  await server.call('POST', `${FLOWS}/approvals/${r.body.id}/reject`, { rejector: 'Alice', rejectorEmail: 'alice@acme.io', reason: 'no' }, alice);
  await hook.waitFor((reqs) => reqs.filter((q) => q.path === '/flaky').length >= 3, 30_000);
  const attempts = hook.to('/flaky');
  expect(attempts).toHaveLength(3);
  expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(1900);
  expect(verify(attempts[2].body, attempts[2].headers['x-flowgate-signature-256'], PROJECT_SECRET)).toBe(true);
  expect(attempts[2].json).toMatchObject({ approval: { status: 'rejected', reason: 'no' } });
});

test('an external approval past its expiry is expired by the sweeper and the expiry delivered', async () => {
  const r = await create({ repositoryIdentifier: 'acme/app', timeoutHours: 0.0003, callback: { type: 'webhook', url: `${hook.url}/expired` } });
  await eventually(async () => ((await server.call('GET', `${FLOWS}/approvals/${r.body.id}`)).body.status === 'expired' ? true : undefined));
  await hook.waitFor((reqs) => reqs.some((q) => q.path === '/expired'));
  expect(hook.to('/expired')[0].json).toMatchObject({ approval: { id: r.body.id, status: 'expired' } });
});

test('400s name the field', async () => {
  const missing = await server.call('POST', `${FLOWS}/approvals`, { context: {} });
  expect(missing.status).toBe(400);
  expect(missing.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/^taskId: /), expect.stringMatching(/^requestedBy: /)]));
  expect((await create({ repositoryIdentifier: 'acme/app', callback: { type: 'webhook' } })).body.message).toEqual(['callback.url: required when type is webhook']);
  expect((await create({})).body.message).toEqual(['approvers: explicit approver emails are required when the approval belongs to no project']);
  expect((await create({ repositoryIdentifier: 'acme/none' })).body.message).toEqual(['repositoryIdentifier: project "acme/none" is not registered']);
  expect((await create({ approvers: ['a@acme.io'], quorum: 2 })).body.message).toEqual(['quorum: quorum 2 can never be reached: 1 possible approver(s) other than the requester (a@acme.io)']);
  // Explicit approvers of a project's approval must belong to it; the requester alone cannot meet the quorum.
  expect((await create({ repositoryIdentifier: 'acme/app', approvers: ['stranger@elsewhere.io'] })).body.message).toEqual(['approvers: stranger@elsewhere.io is not an owner or member of acme/app, so cannot be named as approver']);
  expect((await create({ approvers: ['bob@acme.io'] })).body.message).toEqual(['quorum: quorum 1 can never be reached: 0 possible approver(s) other than the requester (none)']);
  expect((await create({ approvers: ['not-an-email'] })).body.message[0]).toMatch(/^approvers.0: /);
  const scoped = await createToken(server, { name: 'scoped', role: 'application', projects: ['acme/app'] });
  expect((await create({ approvers: ['a@acme.io'] }, scoped)).status).toBe(400);
  expect((await create({ repositoryIdentifier: 'acme/signed' }, scoped)).status).toBe(403);
  expect((await server.call('POST', `${FLOWS}/approvals`, {}, null)).status).toBe(401);
});

test('pending approvals are listed only for the caller\'s projects', async () => {
  const a = await create({ repositoryIdentifier: 'acme/app' });
  const b = await create({ repositoryIdentifier: 'acme/signed' });
  const scoped = await createToken(server, { name: 'app-only', role: 'member', projects: ['acme/app'] });
  const mine = (await server.call('GET', `${FLOWS}/approvals/pending`, undefined, scoped)).body.approvals.map((x: any) => x.id);
  expect(mine).toContain(a.body.id);
  expect(mine).not.toContain(b.body.id);
  expect((await server.call('GET', `${FLOWS}/approvals/${b.body.id}`, undefined, scoped)).status).toBe(403);
});

test('a run approval with a webhook thread: request, expiry and the run failing "approval expired" are all told', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, {
    payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'http://127.0.0.1:9', timeoutHours: 0.0003 },
    callback: { type: 'webhook', webhook: { url: `${hook.url}/thread` } },
  });
  expect(r.status).toBe(201);
  await hook.waitFor((reqs) => reqs.some((q) => q.path === '/thread' && (q.json as any).event === 'run.finished'), 30_000);
  const events = hook.to('/thread').map((q) => q.json as any);
  // In order: the outbox tells a run's thread one notice after the other.
  expect(events.map((e) => e.event)).toEqual(['approval.requested', 'approval.updated', 'run.finished']);
  expect(events[1].approval).toMatchObject({ status: 'expired' });
  expect(events[2]).toMatchObject({ status: 'failed', run: { id: r.body.id, status: 'failed' } });
  const run = (await server.call('GET', `${FLOWS}/${r.body.id}`)).body;
  expect(run.steps.find((s: any) => s.ref === 'approve').error).toBe('approval expired');
});
