import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseManifest } from '../../src/core/registry/load-manifests.js';
import { verifySignature } from '../../src/core/signing.js';
import { FakeAzureDevOps } from '../fakes/azure-devops.js';
import { appKey, FakeGithub } from '../fakes/github.js';
import { Recorder, type RecordedRequest } from '../support/recorder.js';
import { createProject, createToken, eventually, startRun, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The cicd.run step against a webhook receiver (the pipeline reports back to its status URL) and
// the GitHub and Azure DevOps fakes: its pipeline is a cicd-mode child run of the step's run.

const FLOWS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/cicd-flows');
const FLOWS = '/sfp/api/flows';
const SECRET = 'whsec-cicd-plugin-0123456789';
const APP_ID = '4245';
const PAT = 'fake-pat-cicd-plugin-0123456789';
const ADO_REPO = 'acme/proj/app';
const key = appKey();
const github = new FakeGithub(APP_ID, key.publicKey);
const ado = new FakeAzureDevOps('acme', PAT, ['proj']);
const ci = new Recorder();
let server: TestServer;
let db: pg.Pool;
let app: string;

beforeAll(async () => {
  await ci.start();
  // The CI system behind the webhook: it takes every job and names its own run of it.
  ci.respond((r) => {
    const j = r.json as { event?: string; executionId?: string } | undefined;
    if (j?.event !== 'cicd.dispatch' || !j.executionId) return undefined;
    return { body: { cicdRunId: `ci-${j.executionId}`, cicdRunUrl: `https://ci.example/runs/${j.executionId}` } };
  });
  await github.start();
  github.installations.set('acme/app', 7);
  await ado.start();
  ado.addPipeline({ id: 7, project: 'proj' });
  server = await startTestServer({
    flows: FLOWS_DIR,
    env: {
      FLOWGATE_WEBHOOK_SECRET: SECRET, FLOWGATE_CICD_WEBHOOK_URL: `${ci.url}/dispatch`, FLOWGATE_CREDENTIAL_CICD_HOOK: `${ci.url}/hooks`,
      GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: 'gh-webhook-secret-0123456789', GITHUB_API_URL: github.url,
      AZURE_DEVOPS_ORG_URL: ado.orgUrl, AZURE_DEVOPS_TOKEN: PAT, AZURE_DEVOPS_HOOK_USERNAME: 'flowgate-hooks', AZURE_DEVOPS_HOOK_PASSWORD: 'hook-password-0123456789abcdef',
      // Held GitHub Actions reports are settled by the test, when the fake's run has concluded.
      FLOWGATE_SWEEP_INTERVAL_MS: '3600000',
    },
  });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app');
  await createProject(server, ADO_REPO, { provider: 'azure-devops' });
  app = await createToken(server, { name: 'pipelines', role: 'application' });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
  await ado.stop();
  await github.stop();
  await ci.stop();
});

const sent = (event: string, id: string) => ci.requests.filter((r) => (r.json as any)?.event === event && (r.json as any)?.executionId === id);
const signed = (r: RecordedRequest) => verifySignature(r.headers['x-flowgate-signature-256'] as string, r.body, SECRET, 'cicd.dispatch');
const report = (id: string, body: unknown, token: string) => server.call('POST', `${FLOWS}/executions/${id}/status`, body, token);
const step = async (runId: string, ref: string) => (await db.query('select status, output, error, waiting_for from step_runs where run_id = $1 and step_ref = $2', [runId, ref])).rows[0];
const detail = async (id: string) => (await server.call('GET', `${FLOWS}/${id}`)).body;

/** The pipeline run (the child run) a cicd.run step of the run started. */
const pipelineOf = (runId: string) => eventually(async () => (await server.services.store.children(runId))[0], 20_000, `the pipeline run of ${runId}`);

/** Starts a webhook flow and waits until the receiver has the job and the step waits; returns the run, its pipeline run and the job. */
async function dispatched(flow: string, payload: Record<string, unknown> = {}) {
  const id = await startRun(server, flow, payload);
  const child = await pipelineOf(id);
  await ci.waitFor(() => sent('cicd.dispatch', child.id).length > 0);
  await eventually(async () => ((await step(id, 'build'))?.status === 'waiting' ? true : undefined), 20_000, 'the step waiting');
  await eventually(async () => ((await detail(child.id)).engineStatus === 'running' ? true : undefined), 20_000, 'the pipeline run running');
  const job = sent('cicd.dispatch', child.id)[0];
  return { id, child, job, token: (job.json as any).token as string };
}

describe('webhook provider', () => {
  test('dispatches the job signed with its own token and status URL; the pipeline\'s report completes the step with its result', async () => {
    const { id, child, job, token } = await dispatched('webhook-pipeline', { version: '2.1' });
    expect(job.path).toBe('/hooks/pipelines');
    expect(signed(job)).toBe(true);
    expect(job.json).toEqual({
      event: 'cicd.dispatch', executionId: child.id, flowType: 'webhook-pipeline.build', repositoryIdentifier: 'acme/app',
      payload: { version: '2.1', dryRun: false }, statusUrl: `${server.services.config.publicUrl}${FLOWS}/executions/${child.id}/status`,
      token: expect.stringMatching(/^fgx_/), flowgateUrl: server.services.config.publicUrl,
    });
    expect(child).toMatchObject({ executionMode: 'cicd', parentRunId: id, taskType: 'webhook-pipeline.build', repositoryIdentifier: 'acme/app', callback: null });
    expect(await step(id, 'build')).toMatchObject({ status: 'waiting', waiting_for: `pipeline:${child.id}` });
    // The URL is stored as written: its credential is resolved only when the job is sent.
    expect((await server.services.store.findById(child.id, true))?.definition.cicd).toEqual({ provider: 'webhook', url: '{{ credentials.CICD_HOOK }}/pipelines', ref: 'main' });

    expect((await report(child.id, { status: 'running', result: { stage: 'build' } }, token)).status).toBe(200);
    // Progress is the pipeline run's: the step waits on until its end.
    expect((await detail(id)).engineStatus).toBe('waiting');
    expect((await report(child.id, { status: 'completed', result: { artifact: 'app-2.1.zip' } }, token)).body).toEqual({ acknowledged: true, id: child.id, status: 'completed' });

    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    expect((await step(id, 'build')).output).toEqual({
      runId: child.id, provider: 'webhook', status: 'completed', cicdRunId: `ci-${child.id}`, cicdRunUrl: `https://ci.example/runs/${child.id}`,
      result: { stage: 'build', artifact: 'app-2.1.zip' },
    });
    expect((await step(id, 'after')).output).toMatchObject({ message: 'built app-2.1.zip (completed)' });
    // The execution token ended with its pipeline run.
    expect((await report(child.id, { status: 'completed' }, token)).status).toBe(409);
    const lines = (await server.services.logs.list(id)).map((l) => l.message);
    expect(lines).toEqual(expect.arrayContaining([`Pipeline run ${child.id} dispatched to webhook`, `Pipeline run ${child.id} completed (webhook run ci-${child.id}: https://ci.example/runs/${child.id})`]));
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  test('a URL naming a stored credential is resolved from the store when the job is sent, and never kept', async () => {
    const stored = await server.call('POST', '/api/v1/credentials', { name: 'STORED_HOOK', value: `${ci.url}/stored`, type: 'url' });
    expect(stored.status).toBe(201);
    const { id, child, job, token } = await dispatched('webhook-stored-hook');
    expect(job.path).toBe('/stored/pipelines');
    expect((await server.services.store.findById(child.id, true))?.definition.cicd).toMatchObject({ url: '{{ credentials.STORED_HOOK }}/pipelines' });
    expect((await report(child.id, { status: 'completed', result: { artifact: 'app.zip' } }, token)).status).toBe(200);
    expect((await waitForRun(server, id)).status).toBe('Completed');
  });

  test('a failure report fails the step and the run with the pipeline\'s reason', async () => {
    const { id, child, token } = await dispatched('webhook-pipeline');
    expect((await report(child.id, { status: 'failed', result: { stage: 'test' } }, token)).status).toBe(200);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    const build = await step(id, 'build');
    expect(build.status).toBe('failed');
    expect(build.error).toBe(`pipeline run ${child.id} on webhook (webhook run ci-${child.id}: https://ci.example/runs/${child.id}) ended failed: the CI/CD pipeline reported failure`);
    expect((await step(id, 'after'))?.status).not.toBe('completed');
  });

  test('cancelling the run cancels its pipeline through the provider', async () => {
    const { id, child, token } = await dispatched('webhook-pipeline');
    const r = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(r.status).toBe(200);
    expect(r.body.cancelledExecutionIds).toEqual(expect.arrayContaining([id, child.id]));
    const [cancel] = sent('cicd.cancel', child.id);
    expect(cancel.path).toBe('/hooks/pipelines');
    expect(signed(cancel)).toBe(true);
    expect(cancel.json).toEqual({ event: 'cicd.cancel', executionId: child.id, cicdRunId: `ci-${child.id}` });
    expect(await detail(id)).toMatchObject({ status: 'Cancelled' });
    expect(await detail(child.id)).toMatchObject({ status: 'Cancelled', error: 'cancelled by token:admin' });
    expect((await report(child.id, { status: 'completed' }, token)).status).toBe(409);
    expect((await server.services.logs.list(child.id)).map((l) => l.message)).toContain('The CI/CD pipeline was asked to cancel');
  });

  test('cancelling the pipeline run alone fails the step: it was stopped on purpose', async () => {
    const { id, child } = await dispatched('webhook-pipeline');
    expect((await server.call('POST', `${FLOWS}/${child.id}/cancel`)).status).toBe(200);
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect((await step(id, 'build')).error).toMatch(new RegExp(`^pipeline run ${child.id} on webhook .* ended cancelled: cancelled by token:admin$`));
  });

  test('skipping the waiting step through run control cancels its pipeline', async () => {
    const { id, child } = await dispatched('webhook-pipeline');
    expect((await server.call('POST', `/v1/workflow-runs/${id}/steps/build/skip`, { reason: 'built by hand' })).status).toBe(200);
    // (Its run goes on, and ends: the next step reads an output the skipped step does not have.)
    await waitForRun(server, id);
    expect((await step(id, 'build')).status).toBe('skipped');
    // Cancelled by the skip, or by the run's end if that came first: either way its pipeline is told once.
    await ci.waitFor(() => sent('cicd.cancel', child.id).length > 0);
    expect((await detail(child.id)).status).toBe('Cancelled');
    expect((await detail(child.id)).error).toMatch(/^cancelled: (built by hand|its parent run ended)$/);
    await new Promise((r) => setTimeout(r, 300));
    expect(sent('cicd.cancel', child.id)).toHaveLength(1);
  });

  test('a pipeline that does not finish within timeoutSeconds is cancelled and fails the step', async () => {
    const { id, child } = await dispatched('webhook-timeout');
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect((await step(id, 'build')).error).toMatch(new RegExp(`^pipeline run ${child.id} \\(webhook\\) did not finish within [12]s; it was cancelled$`));
    expect(sent('cicd.cancel', child.id)).toHaveLength(1);
    expect(sent('cicd.cancel', child.id)[0].path).toBe('/dispatch');
    expect(await detail(child.id)).toMatchObject({ status: 'Cancelled', error: 'cancelled: step build timed out' });
  });

  test('a run that fails while its pipeline runs asks the pipeline to stop', async () => {
    const { id, child } = await dispatched('webhook-abandoned');
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/a parallel step failed/);
    await ci.waitFor(() => sent('cicd.cancel', child.id).length > 0);
    expect(await detail(child.id)).toMatchObject({ status: 'Cancelled', error: 'cancelled: its parent run ended' });
    await eventually(async () => ((await server.services.logs.list(child.id)).some((l) => l.message === 'The CI/CD pipeline was asked to cancel') ? true : undefined));
  });

  test('so does one whose child flow runs a pipeline', async () => {
    const id = await startRun(server, 'nested-abandoned');
    const flow = await pipelineOf(id);
    const pipeline = await pipelineOf(flow.id);
    expect(pipeline).toMatchObject({ executionMode: 'cicd', taskType: 'nested-pipeline.build' });
    await ci.waitFor(() => sent('cicd.dispatch', pipeline.id).length > 0);
    expect((await waitForRun(server, id)).status).toBe('Failed');
    await ci.waitFor(() => sent('cicd.cancel', pipeline.id).length > 0);
    expect(await detail(pipeline.id)).toMatchObject({ status: 'Cancelled', error: 'cancelled: its parent run ended' });
  });
});

describe('GitHub Actions', () => {
  test('dispatches the workflow on the project\'s repository; reports are checked against the Actions API and the conclusion decides', async () => {
    const id = await startRun(server, 'github-pipeline', { sha: 'abc123' });
    const child = await pipelineOf(id);
    const dispatch = await eventually(async () => github.dispatches.find((d) => d.inputs.executionId === child.id), 20_000, 'the workflow dispatch');
    expect(dispatch).toMatchObject({ repo: 'acme/app', workflow: 'build.yml', ref: 'main' });
    expect(JSON.parse(dispatch.inputs.payload)).toEqual({ sha: 'abc123' });
    const token = dispatch.inputs.token;
    await eventually(async () => ((await detail(child.id)).engineStatus === 'running' ? true : undefined));

    // A report naming another workflow's run is refused; the dispatched run's is taken.
    const other = github.addWorkflowRun({ id: 870_001, repo: 'acme/app', workflow: 'deploy.yml', status: 'completed', conclusion: 'success' });
    expect((await report(child.id, { status: 'completed', cicdRunId: String(other.id) }, token)).status).toBe(403);
    expect((await report(child.id, { status: 'running', cicdRunId: String(dispatch.runId) }, token)).status).toBe(200);
    // Sent from inside the workflow run, before it concluded: held until it has.
    const held = await report(child.id, { status: 'completed', cicdRunId: String(dispatch.runId), result: { image: 'app:abc123' } }, token);
    expect(held.status).toBe(202);
    expect((await step(id, 'build')).status).toBe('waiting');
    github.concludeRun(dispatch.runId, 'success');
    await server.services.cicd.settleAllHeld();

    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    expect((await step(id, 'build')).output).toEqual({
      runId: child.id, provider: 'github-actions', status: 'completed', cicdRunId: String(dispatch.runId),
      cicdRunUrl: `https://github.example/acme/app/actions/runs/${dispatch.runId}`, result: { image: 'app:abc123' },
    });
    const audit = await server.services.audit.list({ targetType: 'run', targetId: child.id });
    expect(audit.find((a) => a.action === 'run.completed')?.details).toMatchObject({ verified: `github-actions run ${dispatch.runId} concluded success` });
  });
});

describe('Azure Pipelines', () => {
  const pipelineRunOf = (executionId: string) => eventually(async () => ado.pipelineRuns.find((r) => r.templateParameters.flowgateExecutionId === executionId), 20_000, 'the pipeline run');

  test('queues the pipeline in the project with a secret token; its report completes the step', async () => {
    const id = await startRun(server, 'ado-pipeline', { repositoryIdentifier: ADO_REPO });
    const child = await pipelineOf(id);
    const pr = await pipelineRunOf(child.id);
    expect(pr).toMatchObject({ pipelineId: 7, project: 'proj', resources: { repositories: { self: { refName: 'refs/heads/main' } } } });
    expect(JSON.parse(pr.templateParameters.flowgatePayload)).toEqual({ env: 'staging' });
    expect(pr.variables.FLOWGATE_TOKEN).toEqual({ value: expect.stringMatching(/^fgx_/), isSecret: true });
    await eventually(async () => ((await detail(child.id)).engineStatus === 'running' ? true : undefined));
    expect((await report(child.id, { status: 'completed', result: { deployed: true } }, pr.variables.FLOWGATE_TOKEN.value!)).status).toBe(200);
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    expect((await step(id, 'build')).output).toMatchObject({ provider: 'azure-pipelines', status: 'completed', cicdRunId: String(pr.id), result: { deployed: true } });
  });

  test('cancelling the run cancels the build', async () => {
    const id = await startRun(server, 'ado-pipeline', { repositoryIdentifier: ADO_REPO });
    const child = await pipelineOf(id);
    const pr = await pipelineRunOf(child.id);
    await eventually(async () => ((await step(id, 'build'))?.status === 'waiting' && (await detail(child.id)).engineStatus === 'running' ? true : undefined));
    expect((await server.call('POST', `${FLOWS}/${id}/cancel`)).status).toBe(200);
    const patch = await eventually(async () => ado.callsTo('PATCH', new RegExp(`/proj/_apis/build/builds/${pr.id}$`))[0]);
    expect(patch.body).toEqual({ status: 4 });
    expect(await detail(child.id)).toMatchObject({ status: 'Cancelled' });
    expect(await detail(id)).toMatchObject({ status: 'Cancelled' });
  });
});

describe('properties', () => {
  test('are refused when the flow is loaded, naming the field', () => {
    const { problems } = parseManifest('bad.yaml', [
      'id: bad', 'name: Bad', 'steps:',
      '  - { ref: a, type: cicd.run, with: { provider: jenkins } }',
      '  - { ref: b, type: cicd.run, with: { provider: github-actions, ref: main } }',
      '  - { ref: c, type: cicd.run, with: { provider: azure-pipelines, pipeline: build, url: "https://ci.example" } }',
      '  - { ref: d, type: cicd.run, with: { provider: webhook, inputs: { key: "{{ credentials.CICD_HOOK }}" } } }',
      '  - { ref: e, type: cicd.run, with: { provider: webhook, url: "https://{{ payload.host }}/hook" } }',
      '  - { ref: f, type: cicd.run, with: { workflow: build.yml, timeout: 5 } }',
    ].join('\n'));
    expect(problems).toEqual([
      'bad.yaml: steps[0].with.provider: Invalid option: expected one of "webhook"|"github-actions"|"azure-pipelines"',
      'bad.yaml: steps[1].with.workflow: required for provider github-actions',
      'bad.yaml: steps[2].with.url: only for provider webhook, not azure-pipelines',
      'bad.yaml: steps[2].with.pipeline: the numeric id of the Azure Pipelines pipeline',
      'bad.yaml: steps[3].with.inputs: credentials may only be used in url (resolved when the pipeline is dispatched)',
      'bad.yaml: steps[4].with.url: may use only {{ credentials.NAME }} templates (resolved when the pipeline is dispatched)',
      'bad.yaml: steps[5].with.timeout: unknown key for a cicd.run step (allowed: provider, workflow, pipeline, url, ref, inputs, timeoutSeconds)',
      'bad.yaml: steps[5].with.provider: required for a cicd.run step',
    ]);
  });

  test('given by a template are checked when the step runs; nothing is dispatched', async () => {
    const before = github.dispatches.length;
    const run = await waitForRun(server, await startRun(server, 'templated-provider', { provider: 'jenkins' }));
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/invalid input for cicd\.run step: with\.provider: Invalid option: expected one of "webhook"\|"github-actions"\|"azure-pipelines"/);
    const { rows } = await db.query('select count(*)::int as n from runs where parent_run_id = $1', [run.id]);
    expect(rows[0].n).toBe(0);
    expect(github.dispatches.length).toBe(before);
  });
});

test('an application token may report for a pipeline run too (a pipeline retrying its last call)', async () => {
  const { id, child } = await dispatched('webhook-pipeline');
  expect((await report(child.id, { status: 'completed', result: { artifact: 'x.zip' } }, app)).status).toBe(200);
  expect((await waitForRun(server, id)).status).toBe('Completed');
});
