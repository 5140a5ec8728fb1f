import { commentPayload, deliver, type FakeGithub } from '../fakes/github.js';
import { SlackSender, type FakeSlack } from '../fakes/slack.js';
import { DOOR_SECRETS, startWithAllDoors, type AllDoors } from '../support/all-doors.js';
import { createProject, createToken, eventually, type TestServer } from '../support/server.js';

// Forged and replayed requests at every door, and misuse of valid credentials: refused, with no
// side effect, and audited.
const SLACK_SECRET = DOOR_SECRETS.slack;
const GITHUB_SECRET = DOOR_SECRETS.github;
const FLOWS = '/sfp/api/flows';
let doors: AllDoors;
let server: TestServer;
let slack: FakeSlack;
let github: FakeGithub;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  doors = await startWithAllDoors();
  ({ server, slack, github } = doors);
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'] });
  await createProject(server, 'acme/other', { owners: ['owner@acme.io'] });
  tokens.scoped = await createToken(server, { name: 'scoped', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] });
  tokens.mallory = await createToken(server, { name: 'mallory', role: 'member', email: 'mallory@acme.io' });
});
afterAll(async () => { await doors?.stop(); });

const count = async (table: string) => Number((await server.services.orm.em.getConnection().execute<{ n: string }[]>(`select count(*)::text as n from ${table}`))[0].n);
// Requests without valid credentials are counted (flowgate_unauthenticated_requests_total), not audited.
const unauthenticated = async (surface: string) => (await server.services.metrics.unauthenticated.get()).values.find((v) => v.labels.surface === surface)?.value ?? 0;
const refusals = async (door: string) => (await server.services.audit.list({ targetType: 'route', limit: 1000 })).filter((a) => a.action === 'request.refused' && a.door === door);

test('forged and replayed Slack requests: 401, nothing happens, counted', async () => {
  const sender = new SlackSender(server.url, SLACK_SECRET);
  const runs = await count('runs');
  const before = await unauthenticated('slack');
  const forged = await sender.command('run gated target=http://127.0.0.1:9', { user: 'U1', channel: 'C1' }, { secret: 'not-the-secret-0123456789' });
  const replayed = await sender.command('run gated target=http://127.0.0.1:9', { user: 'U1', channel: 'C1' }, { timestamp: Math.floor(Date.now() / 1000) - 600 });
  const unsigned = await fetch(`${server.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"url_verification","challenge":"x"}' });
  expect([forged.status, replayed.status, unsigned.status]).toEqual([401, 401, 401]);
  await new Promise((r) => setTimeout(r, 300));
  expect(slack.calls.filter((c) => c.method !== 'auth.test')).toHaveLength(0);
  expect(await count('runs')).toBe(runs);
  expect(await unauthenticated('slack')).toBe(before + 3);
  expect(await refusals('slack')).toHaveLength(0);
});

test('forged GitHub deliveries and wrong Azure DevOps credentials: 401, nothing happens, counted', async () => {
  const runs = await count('runs');
  const body = commentPayload({ repo: 'acme/app', issueNumber: 1, body: '/flowgate run gated target=http://127.0.0.1:9', login: 'dev', association: 'OWNER' });
  const forged = await deliver(server.url, 'not-the-webhook-secret-0123', 'issue_comment', body);
  const unsigned = await deliver(server.url, GITHUB_SECRET, 'issue_comment', body, { signature: null });
  const ado = await fetch(`${server.url}/azure-devops/hooks`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('hooks:wrong-password-0123456789').toString('base64')}` }, body: JSON.stringify({ id: 'e1', eventType: 'workitem.created', resource: { id: 1 } }) });
  const adoNone = await fetch(`${server.url}/azure-devops/hooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect([forged.status, unsigned.status, ado.status, adoNone.status]).toEqual([401, 401, 401, 401]);
  await new Promise((r) => setTimeout(r, 300));
  expect(github.requests ?? []).toHaveLength(0);
  expect(await count('runs')).toBe(runs);
  expect(await count('inbound_deliveries')).toBe(0);
  expect(await unauthenticated('github')).toBe(2);
  expect(await unauthenticated('azure-devops')).toBe(2);
  expect([...await refusals('github'), ...await refusals('azure-devops')]).toHaveLength(0);
});

test('a token scoped to project A used on project B: 403, nothing written, audited', async () => {
  const runs = await count('runs');
  const attempts = [
    await server.call('POST', `${FLOWS}/run`, { payload: { id: 'parallel', repositoryIdentifier: 'acme/other', target: 'http://127.0.0.1:9' } }, tokens.scoped),
    await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/other`, undefined, tokens.scoped),
    await server.call('GET', `${FLOWS}/types/status?repositoryIdentifier=acme/other`, undefined, tokens.scoped),
  ];
  expect(attempts.map((a) => a.status)).toEqual([403, 403, 403]);
  expect(await count('runs')).toBe(runs);
  const audited = (await refusals('rest')).filter((a) => a.actor === 'dev@acme.io' && a.details?.status === 403);
  expect(audited.length).toBeGreaterThanOrEqual(3);
  expect(String(audited[0].details?.reason)).toMatch(/acme\/other/);
});

test('an approval decided with another person\'s email: 403, still pending, audited', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'http://127.0.0.1:9' } });
  const approval = await eventually(async () => { const a = await server.call('GET', `${FLOWS}/approvals/${r.body.id}`); return a.status === 200 ? a.body : undefined; });
  const attempt = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'Owner', approverEmail: 'owner@acme.io' }, tokens.mallory);
  expect(attempt.status).toBe(403);
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', decisions: [] });
  const audit = await server.services.audit.list({ targetType: 'approval', targetId: approval.id });
  expect(audit.find((a) => a.action === 'approval.refused')).toMatchObject({ actor: 'mallory@acme.io', door: 'rest' });
  await server.call('POST', `${FLOWS}/${r.body.id}/cancel`);
});
