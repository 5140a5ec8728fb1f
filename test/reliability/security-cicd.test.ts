import { appKey, FakeGithub } from '../fakes/github.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// GitHub Actions reports against a fake GitHub: the execution token travels in workflow inputs,
// which whoever reads the repository's Actions runs can see, so the Actions API decides.
const APP_ID = '4243';
const FLOWS = '/sfp/api/flows';
const key = appKey();
const github = new FakeGithub(APP_ID, key.publicKey);
let server: TestServer;
let app: string;

beforeAll(async () => {
  await github.start();
  github.installations.set('acme/app', 7);
  server = await startTestServer({
    env: { GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: 'gh-webhook-secret-0123456789', GITHUB_API_URL: github.url, FLOWGATE_SWEEP_INTERVAL_MS: '3600000' },
  });
  await createProject(server, 'acme/app');
  app = await createToken(server, { name: 'pipelines', role: 'application' });
});
afterAll(async () => {
  await server?.stop();
  await github.stop();
});

/** A `cicd-build` run (workflow build.yml) dispatched and running; its Actions run is in progress. */
async function dispatched() {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'cicd-build', repositoryIdentifier: 'acme/app', commitSha: 'abc123' } });
  expect(r.status).toBe(201);
  const id = r.body.id as string;
  const dispatch = await eventually(async () => github.dispatches.find((d) => d.inputs.executionId === id));
  await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus === 'running' ? true : undefined));
  return { id, runId: dispatch.runId, token: dispatch.inputs.token };
}

const report = (id: string, body: unknown, token: string) => server.call('POST', `${FLOWS}/executions/${id}/status`, body, token);
const detail = async (id: string) => (await server.call('GET', `${FLOWS}/${id}`)).body;
/** The pipeline run recorded for an execution (the sfp detail shows only its URL). */
const cicdRunIdOf = async (id: string) => (await server.services.store.findById(id))?.cicdRunId ?? null;
const actions = async (id: string) => (await server.services.audit.list({ targetType: 'run', targetId: id })).map((a) => ({ action: a.action, details: a.details as Record<string, unknown> | null }));
let foreignIds = 880_000;

test('a report naming an Actions run that does not exist, of another workflow, not dispatched, or older than the execution is refused (403), audited, nothing changed', async () => {
  const { id, token } = await dispatched();
  const older = github.addWorkflowRun({ id: foreignIds++, repo: 'acme/app', workflow: 'build.yml', createdAt: new Date(Date.now() - 3_600_000), status: 'completed', conclusion: 'success' });
  const otherWorkflow = github.addWorkflowRun({ id: foreignIds++, repo: 'acme/app', workflow: 'deploy.yml', status: 'completed', conclusion: 'success' });
  const pushed = github.addWorkflowRun({ id: foreignIds++, repo: 'acme/app', workflow: 'build.yml', event: 'push', status: 'completed', conclusion: 'success' });
  const before = await detail(id);
  for (const [cicdRunId, why] of [
    ['424242', /has no run 424242 of acme\/app/],
    [String(otherWorkflow.id), /belongs to \.github\/workflows\/deploy\.yml, not to the dispatched workflow build\.yml/],
    [String(pushed.id), /was started by push, not by a dispatch/],
    [String(older.id), /before the execution was dispatched/],
  ] as const) {
    for (const status of ['completed', 'running']) {
      const r = await report(id, { status, cicdRunId, result: { forged: true } }, token);
      expect({ cicdRunId, status, code: r.status }).toEqual({ cicdRunId, status, code: 403 });
      expect(r.body).toMatchObject({ statusCode: 403, error: 'Forbidden', currentStatus: 'running', message: expect.stringMatching(why) });
    }
  }
  const after = await detail(id);
  expect([after.status, after.result, after.cicdRunUrl]).toEqual([before.status, before.result, before.cicdRunUrl]);
  expect(await cicdRunIdOf(id)).toBeNull();
  expect(after.result).not.toHaveProperty('forged');
  expect((await actions(id)).filter((a) => a.action === 'run.report_refused')).toHaveLength(8);
});

test('a final report that contradicts the Actions run\'s conclusion is refused; the matching one ends the run', async () => {
  const { id, runId, token } = await dispatched();
  github.concludeRun(runId, 'failure');
  const forged = await report(id, { status: 'completed', cicdRunId: String(runId), result: { artifact: 'evil.tgz' } }, token);
  expect(forged.status).toBe(403);
  expect(forged.body).toMatchObject({ currentStatus: 'running', message: expect.stringMatching(/concluded failure, not "completed"/) });
  expect((await detail(id)).engineStatus).toBe('running');
  // An application token is checked the same way.
  expect((await report(id, { status: 'completed', cicdRunId: String(runId) }, app)).status).toBe(403);

  const real = await report(id, { status: 'failed', cicdRunId: String(runId), result: { stage: 'test' } }, token);
  expect(real.status).toBe(200);
  expect(await detail(id)).toMatchObject({ status: 'Failed', cicdRunUrl: `https://github.example/acme/app/actions/runs/${runId}`, result: { stage: 'test' } });
  expect(await cicdRunIdOf(id)).toBe(String(runId));
  const ended = (await actions(id)).find((a) => a.action === 'run.failed');
  expect(ended?.details).toMatchObject({ verified: `github-actions run ${runId} concluded failure` });
});

test('a final report sent from inside the Actions run is held (202) until it concludes; the conclusion decides, the contradicting report is refused', async () => {
  const { id, runId, token } = await dispatched();
  // The URL people are shown comes from the Actions API, not from whoever holds the token.
  expect((await report(id, { status: 'running', cicdRunId: String(runId), cicdRunUrl: 'https://evil.example/phish' }, token)).status).toBe(200);
  const real = await report(id, { status: 'completed', result: { artifact: 'app.tgz' } }, token);
  expect(real.status).toBe(202);
  expect(real.body).toEqual({ acknowledged: true, id, status: 'running', pending: 'completed' });
  // Someone who read the token from the inputs reports too: held as well, it decides nothing.
  const forged = await report(id, { status: 'failed', result: { why: 'forged' } }, token);
  expect(forged.status).toBe(202);
  expect(await server.services.cicd.settleAllHeld()).toBe(0);
  expect((await detail(id)).engineStatus).toBe('running');

  github.concludeRun(runId, 'success');
  await server.services.cicd.settleAllHeld();
  const done = await waitForRun(server, id, ['Completed']);
  expect(done.result).toEqual({ artifact: 'app.tgz' });
  expect(done.cicdRunUrl).toBe(`https://github.example/acme/app/actions/runs/${runId}`);
  const audit = await actions(id);
  expect(audit).toEqual(expect.arrayContaining([
    { action: 'run.status_held', details: expect.objectContaining({ status: 'completed', cicdRunId: String(runId) }) },
    { action: 'run.report_refused', details: expect.objectContaining({ status: 'failed', reason: `github-actions run ${runId} concluded success` }) },
    { action: 'run.completed', details: expect.objectContaining({ verified: `github-actions run ${runId} concluded success` }) },
  ]));
  // The token ended with the run.
  expect((await report(id, { status: 'failed' }, token)).status).toBe(409);
});

test('when no held report matches, the Actions run\'s conclusion ends the run', async () => {
  const { id, runId, token } = await dispatched();
  expect((await report(id, { status: 'completed', cicdRunId: String(runId), result: { artifact: 'evil.tgz' } }, token)).status).toBe(202);
  github.concludeRun(runId, 'cancelled');
  await server.services.cicd.settleAllHeld();
  const done = await waitForRun(server, id, ['Cancelled']);
  expect(done.error).toBe(`github-actions run ${runId} concluded cancelled`);
  expect(done.result).not.toHaveProperty('artifact');
});

test('an execution cannot claim the Actions run of another execution, nor change the one it reported', async () => {
  const one = await dispatched();
  const two = await dispatched();
  expect((await report(one.id, { status: 'running', cicdRunId: String(one.runId) }, one.token)).status).toBe(200);
  const claimed = await report(two.id, { status: 'running', cicdRunId: String(one.runId) }, two.token);
  expect(claimed.status).toBe(403);
  expect(claimed.body.message).toMatch(new RegExp(`belongs to execution ${one.id}`));
  const switched = await report(one.id, { status: 'running', cicdRunId: String(two.runId) }, one.token);
  expect(switched.status).toBe(403);
  expect(switched.body.message).toMatch(new RegExp(`runs as pipeline run ${one.runId}, not ${two.runId}`));
  expect(await cicdRunIdOf(one.id)).toBe(String(one.runId));
  expect(await cicdRunIdOf(two.id)).toBeNull();
});
