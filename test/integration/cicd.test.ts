import pg from 'pg';
import { systemDatabaseUrlFor } from '../../src/config.js';
import { CicdService } from '../../src/core/cicd/cicd-service.js';
import { CicdStore } from '../../src/core/cicd/cicd-store.js';
import { CicdDispatchers } from '../../src/core/cicd/dispatcher.js';
import { WebhookDispatcher } from '../../src/core/cicd/webhook-dispatcher.js';
import { verifySignature, type SignaturePurpose } from '../../src/core/signing.js';
import { AppError } from '../../src/errors.js';
import { Recorder, type RecordedRequest } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

const SECRET = 'whsec-cicd-0123456789abcdef';
const FLOWS = '/sfp/api/flows';
let server: TestServer;
const ci = new Recorder();
let app: string;
let member: string;

/** The CI system behind the webhook: `payload.behaviour` decides how it answers a dispatch. */
const behaviourOf = new Map<string, string>();
const flakySeen = new Set<string>();

beforeAll(async () => {
  await ci.start();
  ci.respond((r) => {
    const j = r.json as { event?: string; executionId?: string; payload?: { behaviour?: string } } | undefined;
    if (!j?.executionId) return undefined;
    if (j.event === 'cicd.dispatch') {
      const behaviour = j.payload?.behaviour ?? 'ok';
      behaviourOf.set(j.executionId, behaviour);
      if (behaviour === 'refuse') return { status: 400, body: { error: 'unknown pipeline' } };
      if (behaviour === 'flaky' && !flakySeen.has(j.executionId)) {
        flakySeen.add(j.executionId);
        return { status: 503 };
      }
      return { body: { cicdRunId: `ci-${j.executionId}`, cicdRunUrl: `https://ci.example/runs/${j.executionId}` } };
    }
    if (j.event === 'cicd.cancel' && behaviourOf.get(j.executionId) === 'stuck') return { status: 500 };
    return undefined;
  });
  server = await startTestServer({
    env: { FLOWGATE_WEBHOOK_SECRET: SECRET, FLOWGATE_CICD_WEBHOOK_URL: `${ci.url}/dispatch`, FLOWGATE_CREDENTIAL_CICD_HOOK: `${ci.url}/hooks` },
  });
  await createProject(server, 'acme/app');
  app = await createToken(server, { name: 'pipelines', role: 'application' });
  member = await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io' });
});
afterAll(async () => {
  await server?.stop();
  await ci.stop();
});

/** Signed with the server secret for this purpose (dispatches and cancels: cicd.dispatch; callbacks: run.notice) and no other. */
const signed = (r: RecordedRequest, purpose: SignaturePurpose = 'cicd.dispatch') => {
  const header = r.headers['x-flowgate-signature-256'] as string;
  const others = (['cicd.dispatch', 'run.notice', 'approval.decision'] as const).filter((p) => p !== purpose);
  return verifySignature(header, r.body, SECRET, purpose) && others.every((p) => !verifySignature(header, r.body, SECRET, p));
};
const sent = (event: string, id: string) => ci.requests.filter((r) => (r.json as any)?.event === event && (r.json as any)?.executionId === id);

async function startCicd(params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, type = 'cicd-webhook') {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: type, repositoryIdentifier: 'acme/app', commitSha: 'abc123', ...params }, ...extra });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

/** Starts a run and waits until its pipeline has it; returns the id, the dispatch and its token. */
async function dispatched(params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const id = await startCicd(params, extra);
  await ci.waitFor(() => sent('cicd.dispatch', id).length > 0);
  await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus === 'running' ? true : undefined));
  const dispatch = sent('cicd.dispatch', id)[0];
  return { id, dispatch, token: (dispatch.json as any).token as string };
}

const report = (id: string, body: unknown, token: string | null) => server.call('POST', `${FLOWS}/executions/${id}/status`, body, token);

describe('dispatch', () => {
  test('POST /run hands the run to the webhook, signed, with its execution token and status URL; the run is running', async () => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'cicd-webhook', repositoryIdentifier: 'acme/app', commitSha: 'abc123' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ taskType: 'cicd-webhook', status: 'Running' });
    const id = r.body.id as string;
    await ci.waitFor(() => sent('cicd.dispatch', id).length > 0);
    const [dispatch] = sent('cicd.dispatch', id);
    expect(dispatch.path).toBe('/dispatch');
    expect(signed(dispatch)).toBe(true);
    expect(dispatch.json).toEqual({
      event: 'cicd.dispatch', executionId: id, flowType: 'cicd-webhook', repositoryIdentifier: 'acme/app',
      payload: { id: 'cicd-webhook', commitSha: 'abc123' },
      statusUrl: expect.stringMatching(new RegExp(`/sfp/api/flows/executions/${id}/status$`)),
      token: expect.stringMatching(/^fgx_/), flowgateUrl: server.services.config.publicUrl,
    });

    const run = await eventually(async () => {
      const got = await server.call('GET', `${FLOWS}/${id}`);
      return got.body.engineStatus === 'running' ? got.body : undefined;
    });
    expect(run).toMatchObject({ executionMode: 'cicd', status: 'Running', cicdRunUrl: `https://ci.example/runs/${id}` });
    expect((await server.services.store.findById(id))?.cicdRunId).toBe(`ci-${id}`);

    // Only the token's hash is stored, bound to the run, expiring in 24 hours.
    const token = (dispatch.json as any).token as string;
    const rows = await server.services.orm.em.getConnection().execute(`select token_hash, run_id, expires_at, role, projects from api_tokens where run_id = ?`, [id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).not.toContain(token);
    expect(rows[0]).toMatchObject({ role: 'application', projects: ['acme/app'] });
    expect(Math.abs(new Date(rows[0].expires_at).getTime() - (Date.now() + 24 * 3_600_000))).toBeLessThan(120_000);
    // Per-execution tokens are not listed with people's and applications' tokens.
    expect((await server.call('GET', '/api/v1/tokens')).body.tokens.map((t: any) => t.name)).not.toContain(`execution:${id}`);

    // The secret is in no engine checkpoint and no log line.
    const system = new pg.Client({ connectionString: systemDatabaseUrlFor(server.services.config.databaseUrl!) });
    await system.connect();
    try {
      const tables = await system.query(`select table_name from information_schema.tables where table_schema = 'dbos' and table_type = 'BASE TABLE'`);
      expect(tables.rows.length).toBeGreaterThan(0);
      for (const { table_name } of tables.rows) {
        const hits = await system.query(`select count(*)::int as n from dbos."${table_name}" t where t::text like $1`, [`%${token}%`]);
        expect({ table: table_name, n: hits.rows[0].n }).toEqual({ table: table_name, n: 0 });
      }
    } finally {
      await system.end();
    }
    const lines = await server.services.logs.list(id);
    expect(lines.map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/Dispatched to the CI\/CD pipeline \(pipeline run ci-/)]));
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  test('cicd.url may be built from a server credential', async () => {
    const id = await startCicd({}, {}, 'cicd-webhook-url');
    await ci.waitFor(() => sent('cicd.dispatch', id).length > 0);
    const [dispatch] = sent('cicd.dispatch', id);
    expect(dispatch.path).toBe('/hooks/custom');
    expect(signed(dispatch)).toBe(true);
  });

  test('a transient failure is retried with a fresh token; the failed attempt\'s token is revoked', async () => {
    const id = await startCicd({ behaviour: 'flaky' });
    await ci.waitFor(() => sent('cicd.dispatch', id).length >= 2, 20_000);
    const [first, second] = sent('cicd.dispatch', id);
    expect(second.at - first.at).toBeGreaterThanOrEqual(900);
    const [t1, t2] = [(first.json as any).token, (second.json as any).token];
    expect(t1).not.toBe(t2);
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus === 'running' ? true : undefined));
    expect((await report(id, { status: 'running' }, t1)).status).toBe(401);
    expect((await report(id, { status: 'running' }, t2)).status).toBe(200);
    const lines = (await server.services.logs.list(id)).map((l) => l.message);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/Dispatch attempt 1 failed: dispatching run .* \(webhook http:\/\/127\.0\.0\.1:\d+\): HTTP 503; retrying in 1s/)]));
  });

  test('a refused dispatch fails the run with the reason, and its callback hears about it', async () => {
    const id = await startCicd({ behaviour: 'refuse' }, { callback: { type: 'webhook', webhook: { url: `${ci.url}/callback` } } });
    const run = await waitForRun(server, id, ['Failed']);
    expect(run.error).toMatch(/^CI\/CD dispatch failed: dispatching run .* \(webhook http:\/\/127\.0\.0\.1:\d+\): HTTP 400$/);
    expect(sent('cicd.dispatch', id)).toHaveLength(1); // a 4xx is not retried
    await ci.waitFor((reqs) => reqs.some((q) => q.path === '/callback' && (q.json as any)?.runId === id));
    const notice = ci.requests.find((q) => q.path === '/callback' && (q.json as any)?.runId === id)!;
    expect(signed(notice, 'run.notice')).toBe(true);
    expect(notice.json).toMatchObject({ event: 'run.finished', status: 'failed', error: run.error });
    const tokens = await server.services.orm.em.getConnection().execute('select id from api_tokens where run_id = ?', [id]);
    expect(tokens).toHaveLength(0);
  });

  test('types this server cannot dispatch, or cannot dispatch signed, are refused with 400', async () => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'cicd-build', repositoryIdentifier: 'acme/app', commitSha: 'abc' } });
    expect(r.status).toBe(400);
    expect(r.body.summary).toBe('Flow type "cicd-build" runs in cicd mode on github-actions; no github-actions dispatcher is configured on this server');
    expect(r.body.message).toEqual(['payload.id: cicd flow type on github-actions, which this server cannot dispatch to']);

    // Without FLOWGATE_WEBHOOK_SECRET nothing is dispatched (one server per test file: the rule is checked on the service).
    const unsigned = new CicdService(
      { ...server.services, cicdStore: new CicdStore(server.services.orm), engine: { startDispatch: async () => undefined, announceFinished: async () => undefined },
        dispatchers: new CicdDispatchers([new WebhookDispatcher({ defaultUrl: `${ci.url}/dispatch`, flowgateUrl: 'http://flowgate' })]) },
      { credentials: {}, publicUrl: 'http://flowgate', tokenTtlHours: 24, runFinished: () => undefined },
    );
    let refused: unknown;
    try { await unsigned.requireDispatchable(server.services.registry.get('cicd-webhook'), 'acme/app'); } catch (err) { refused = err; }
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).status).toBe(400);
    expect((refused as AppError).message).toMatch(/FLOWGATE_WEBHOOK_SECRET is not configured/);
  });
});

describe('POST /executions/{id}/status', () => {
  test('reports move the run, results deep-merge, the same final report is acknowledged again (application token) and another is refused', async () => {
    const { id, token } = await dispatched({}, { callback: { type: 'webhook', webhook: { url: `${ci.url}/callback` } } });
    const running = await report(id, { status: 'running', result: { stages: { build: 'started' }, attempt: 1 } }, token);
    expect(running.status).toBe(200);
    expect(running.body).toEqual({ acknowledged: true, id, status: 'running' });

    const done = await report(id, { status: 'completed', result: { stages: { test: 'passed' }, artifacts: ['app.zip'] }, cicdRunUrl: 'https://ci.example/runs/other' }, token);
    expect(done.body).toEqual({ acknowledged: true, id, status: 'completed' });
    const run = (await server.call('GET', `${FLOWS}/${id}`)).body;
    // A URL the pipeline reports replaces the one its dispatch answered with.
    expect(run).toMatchObject({ status: 'Completed', engineStatus: 'completed', success: true, error: null, cicdRunUrl: 'https://ci.example/runs/other' });
    expect(run.result).toEqual({ stages: { build: 'started', test: 'passed' }, attempt: 1, artifacts: ['app.zip'] });
    expect(Date.parse(run.finishedAt)).not.toBeNaN();

    // An application token (a pipeline retrying its last call) gets the same final report acknowledged.
    const again = await report(id, { status: 'completed', result: { late: true } }, app);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ acknowledged: true, id, status: 'completed' });
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.result).not.toHaveProperty('late');

    for (const status of ['failed', 'running']) {
      const refused = await report(id, { status }, app);
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ statusCode: 409, error: 'Conflict', currentStatus: 'completed' });
      expect(refused.body.message).toMatch(/already ended completed/);
    }

    // The callback hears once, signed; the end is logged, audited and counted.
    await ci.waitFor((reqs) => reqs.some((q) => q.path === '/callback' && (q.json as any)?.runId === id));
    const notices = ci.requests.filter((q) => q.path === '/callback' && (q.json as any)?.runId === id);
    expect(notices).toHaveLength(1);
    expect(signed(notices[0], 'run.notice')).toBe(true);
    expect(notices[0].json).toMatchObject({ event: 'run.finished', status: 'completed', taskType: 'cicd-webhook', result: run.result });
    const lines = (await server.services.logs.list(id)).map((l) => l.message);
    expect(lines).toEqual(expect.arrayContaining(['CI/CD pipeline reported running', 'CI/CD pipeline reported completed (https://ci.example/runs/other)', 'Run completed']));
    const audit = await server.services.audit.list({ targetType: 'run', targetId: id });
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['run.dispatched', 'run.status_reported', 'run.completed']));
    expect(audit.find((a) => a.action === 'run.completed')?.actor).toBe(`token:execution:${id}`);
    expect(await server.services.metrics.registry.getSingleMetricAsString('flowgate_runs_finished_total')).toMatch(/status="completed"} [1-9]/);
  });

  test('an execution token ends with its run (completed, failed or cancelled): status and metadata are refused (409), audited, the run unchanged', async () => {
    const completed = await dispatched();
    expect((await report(completed.id, { status: 'completed', result: { artifact: 'a.zip' } }, completed.token)).status).toBe(200);
    const failed = await dispatched();
    expect((await report(failed.id, { status: 'failed', result: { stage: 'test' } }, failed.token)).status).toBe(200);
    const cancelled = await dispatched();
    expect((await server.call('POST', `${FLOWS}/${cancelled.id}/cancel`)).status).toBe(200);

    for (const [{ id, token }, ended] of [[completed, 'completed'], [failed, 'failed'], [cancelled, 'cancelled']] as const) {
      const before = (await server.call('GET', `${FLOWS}/${id}`)).body;
      for (const status of ['completed', 'failed', 'running', ended]) {
        const r = await report(id, { status, result: { forged: true } }, token);
        expect({ id, status, code: r.status }).toEqual({ id, status, code: 409 });
        expect(r.body).toMatchObject({ statusCode: 409, error: 'Conflict', currentStatus: ended, message: expect.stringMatching(/execution token ended with it/) });
      }
      const meta = await server.call('PATCH', `${FLOWS}/internal/${id}/metadata`, { result: { forged: true } }, token);
      expect(meta.status).toBe(409);
      expect(meta.body).toMatchObject({ statusCode: 409, error: 'Conflict', currentStatus: ended });
      const after = (await server.call('GET', `${FLOWS}/${id}`)).body;
      expect(after).toEqual(before);
      expect(after.result).not.toHaveProperty('forged');
      const actions = (await server.services.audit.list({ targetType: 'run', targetId: id })).map((a) => a.action);
      expect(actions).toEqual(expect.arrayContaining(['run.report_refused', 'run.metadata_refused']));
    }
  });

  test('a failed report fails the run', async () => {
    const { id, token } = await dispatched();
    expect((await report(id, { status: 'failed', result: { failedStage: 'test' } }, token)).body.status).toBe('failed');
    expect((await server.call('GET', `${FLOWS}/${id}`)).body).toMatchObject({ status: 'Failed', error: 'the CI/CD pipeline reported failure', result: { failedStage: 'test' } });
  });

  test('the execution token works only for its own run and only on its status route; expired it is 401', async () => {
    const one = await dispatched();
    const two = await dispatched();
    expect((await report(one.id, { status: 'running' }, one.token)).status).toBe(200);
    const meta = await server.call('PATCH', `${FLOWS}/internal/${one.id}/metadata`, { result: { pipeline: { stage: 'test' } } }, one.token);
    expect(meta.status).toBe(200);
    expect(meta.body.result).toMatchObject({ pipeline: { stage: 'test' } });

    const refusals: [string, string, unknown?][] = [
      ['POST', `${FLOWS}/executions/${two.id}/status`, { status: 'completed' }],
      ['POST', `${FLOWS}/executions/run-${one.id}/status`, { status: 'running' }],
      ['PATCH', `${FLOWS}/internal/${two.id}/metadata`, { result: { x: 1 } }],
      ['POST', `${FLOWS}/internal/track-lock-run`, { lockKey: 'k', runId: one.id }],
      ['GET', `${FLOWS}/runs?repositoryIdentifier=acme/app`],
      ['GET', `${FLOWS}/${one.id}`],
      ['POST', `${FLOWS}/${one.id}/cancel`],
      ['GET', `${FLOWS}/types`],
      ['GET', '/api/v1/projects'],
    ];
    for (const [method, path, body] of refusals) {
      const r = await server.call(method, path, body, one.token);
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
    }
    expect((await server.call('GET', `${FLOWS}/${two.id}`)).body.engineStatus).toBe('running');

    await server.services.orm.em.getConnection().execute(`update api_tokens set expires_at = now() - interval '1 minute' where run_id = ?`, [one.id]);
    const expired = await report(one.id, { status: 'completed' }, one.token);
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ statusCode: 401, error: 'Unauthorized', message: expect.stringMatching(/^Token expired at /) });
    expect(expired.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect((await report(two.id, { status: 'completed' }, two.token)).status).toBe(200);
  });

  test('an application token may report; members, unknown executions, bad bodies and flow runs are refused', async () => {
    const { id } = await dispatched();
    expect((await report(id, { status: 'running', cicdRunId: 'gh-77' }, app)).body).toEqual({ acknowledged: true, id, status: 'running' });

    const asMember = await report(id, { status: 'completed' }, member);
    expect(asMember.status).toBe(403);
    expect(asMember.body.message).toMatch(/Requires role: application/);
    expect((await report(id, { status: 'completed' }, null)).status).toBe(401);

    const unknown = await report('0190f0f0-0000-7000-8000-000000000000', { status: 'running' }, app);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ statusCode: 404, error: 'Not Found' });

    const bad = await report(id, { status: 'done', result: 'x', cicdRunUrl: 'ftp://x' }, app);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('Bad Request');
    expect(bad.body.message.map((m: string) => m.split(':')[0]).sort()).toEqual(['cicdRunUrl', 'result', 'status']);
    expect((await report(id, {}, app)).body.message).toEqual([expect.stringMatching(/^status: /)]);

    const flow = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'notifier', repositoryIdentifier: 'acme/app' } });
    await waitForRun(server, flow.body.id);
    const notCicd = await report(flow.body.id, { status: 'completed' }, app);
    expect(notCicd.status).toBe(400);
    expect(notCicd.body.message).toMatch(/flow mode; only cicd executions take status reports/);
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus).toBe('running');
  });
});

describe('POST /{id}/cancel', () => {
  test('asks the pipeline to cancel, signed, then marks the run cancelled; the pipeline\'s own cancelled report is acknowledged (application token)', async () => {
    const { id, token } = await dispatched();
    const r = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id, status: 'Cancelled', cancelledExecutionIds: [id] });
    const [cancel] = sent('cicd.cancel', id);
    expect(cancel.path).toBe('/dispatch');
    expect(signed(cancel)).toBe(true);
    expect(cancel.json).toEqual({ event: 'cicd.cancel', executionId: id, cicdRunId: `ci-${id}` });
    expect((await server.call('GET', `${FLOWS}/${id}`)).body).toMatchObject({ status: 'Cancelled', error: 'cancelled by token:admin' });

    // The execution token ended with the run; the pipeline's own "cancelled" is acknowledged through an application token.
    expect((await report(id, { status: 'cancelled' }, token)).status).toBe(409);
    expect((await report(id, { status: 'cancelled' }, app)).status).toBe(200);
    expect((await report(id, { status: 'completed' }, app)).status).toBe(409);
    expect((await server.call('POST', `${FLOWS}/${id}/cancel`)).status).toBe(400);
  });

  test('a pipeline that cannot be cancelled leaves the run running (503)', async () => {
    const { id } = await dispatched({ behaviour: 'stuck' });
    const r = await server.call('POST', `${FLOWS}/${id}/cancel`);
    expect(r.status).toBe(503);
    expect(r.body.message).toMatch(/^Cancelling the CI\/CD pipeline of execution .* failed: cancelling run .* HTTP 500; the execution is still running$/);
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.engineStatus).toBe('running');
  });
});
