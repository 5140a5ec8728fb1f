import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { BUILTIN_FLOWS, eventually, waitForRun } from '../support/server.js';

// The built-in request-elevated-privileges flow, end to end, on the real server process:
// run → suspended at its approval → approved by an owner → grant, hold, revoke → completed.
const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
let server: ServerProcess;
const accessApi = new Recorder();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await accessApi.start();
  server = await startServerProcess({
    DATABASE_URL: await freshDatabaseUrl('e2e_access'),
    FLOWGATE_MANIFESTS_DIR: BUILTIN_FLOWS,
    FLOWGATE_CREDENTIAL_ACCESS_API: `${accessApi.url}/access`,
  });
  expect((await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['lead@acme.io'], members: ['dev@acme.io'] })).status).toBe(201);
  for (const [name, role] of [['dev', 'member'], ['lead', 'owner'], ['mallory', 'member']]) {
    const r = await server.call('POST', '/api/v1/tokens', { name, role, email: `${name}@acme.io` });
    tokens[name] = r.body.token;
  }
}, TIMEOUT);

afterAll(() => endServer(server, [() => accessApi.stop()], { exitsCleanly: true }), TIMEOUT);

test('request → pending approval → approved by an owner → access granted, then revoked', async () => {
  const started = await server.call('POST', `${FLOWS}/run`, {
    payload: { id: 'request-elevated-privileges', repositoryIdentifier: 'acme/app', username: 'dev', durationMinutes: 0.03, reason: 'incident 42' },
  }, tokens.dev);
  expect(started.status).toBe(201);
  const id = started.body.id;

  const approval = await eventually(async () => {
    const a = await server.call('GET', `${FLOWS}/approvals/${id}`, undefined, tokens.dev);
    const run = await server.call('GET', `${FLOWS}/${id}`, undefined, tokens.dev);
    return a.status === 200 && run.body.status === 'Suspended' ? a.body : undefined;
  }, 30_000);
  expect(approval).toMatchObject({ status: 'pending', requestedBy: 'dev@acme.io', approvers: ['lead@acme.io'], approversSource: 'owners' });
  expect(approval.message).toBe('dev@acme.io requests elevated access for dev (0.03 min): incident 42');
  expect(accessApi.requests).toHaveLength(0);

  // The requester may not approve, nor may someone who is not an owner.
  expect((await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'dev', approverEmail: 'dev@acme.io' }, tokens.dev)).status).toBe(403);
  expect((await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'm', approverEmail: 'mallory@acme.io' }, tokens.mallory)).status).toBe(403);
  expect(accessApi.requests).toHaveLength(0);

  const approved = await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'Lead', approverEmail: 'lead@acme.io' }, tokens.lead);
  expect(approved.body).toMatchObject({ status: 'approved', resolvedBy: 'lead@acme.io' });

  const run = await waitForRun({ call: (m, p, b) => server.call(m, p, b) }, id, ['Completed', 'Failed'], 60_000);
  expect(run.status).toBe('Completed');
  expect(accessApi.requests.map((r) => r.path)).toEqual(['/access/grant', '/access/revoke']);
  expect(accessApi.requests[0].json).toEqual({ user: 'dev', minutes: 0.03, reason: 'incident 42' });
  expect(accessApi.requests[1].at - accessApi.requests[0].at).toBeGreaterThanOrEqual(1700);
  expect(run.result).toEqual({ user: 'dev', grantedFor: 0.03, revoked: true });
  const logs = (await server.call('GET', `${FLOWS}/${id}/logs`)).body.logs.map((l: any) => l.message);
  expect(logs).toEqual(expect.arrayContaining(['Approval approved by lead@acme.io', expect.stringMatching(/^POST \*\*\*\/grant → 200/)]));
  expect(JSON.stringify(logs)).not.toContain(accessApi.url);
}, TIMEOUT);
