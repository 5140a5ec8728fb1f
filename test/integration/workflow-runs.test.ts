import type { Run } from '../../src/db/entities/run.js';
import { Recorder } from '../support/recorder.js';
import { acmePeople, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The workflow-runs API over the real server: the same runs, steps and approvals as the sfp API.
let server: TestServer;
const target = new Recorder();
const WR = '/v1/workflow-runs';
const FLOWS = '/sfp/api/flows';
const t: Record<string, string> = {};

const RUN_FIELDS = ['id', 'workflow_id', 'project_id', 'status', 'triggered_by', 'workflow_version', 'max_parallel_steps', 'payload', 'error',
  'started_at', 'finished_at', 'expires_at', 'retry_of_run_id', 'parent_workflow_run_id', 'parent_step_run_id', 'tags', 'workflow_version_id',
  'created_by', 'created_at'].sort();
const STEP_FIELDS = ['id', 'workflow_run_id', 'workflow_step_id', 'step_ref', 'job_run_id', 'attempt', 'status', 'deps_completed', 'deps_required',
  'output', 'error', 'started_at', 'finished_at', 'created_at'].sort();

beforeAll(async () => {
  await target.start();
  server = await startTestServer();
  Object.assign(t, await acmePeople(server));
  t.noEmail = await createToken(server, { name: 'no-email', role: 'member' });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

/** Starts a run over the sfp API and returns its id. */
async function startSfp(flow: string, params: Record<string, unknown> = {}, token = t.dev, extra: Record<string, unknown> = {}) {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: flow, repositoryIdentifier: 'acme/app', ...params }, ...extra }, token);
  expect(r.status).toBe(201);
  return r.body.id as string;
}

/** A run waiting for an event (non-terminal until cancelled). */
async function waiting() {
  const id = await startSfp('waiter');
  await eventually(async () => ((await server.call('GET', `${WR}/${id}/steps`)).body?.[0]?.status === 'waiting' ? true : undefined));
  return id;
}

/** A gated run whose approval step is waiting. */
async function gated(as = t.dev) {
  const id = await startSfp('gated', { target: target.url }, as);
  await eventually(async () => ((await server.call('GET', `${WR}/${id}/steps`)).body?.find((s: any) => s.step_ref === 'approve')?.status === 'waiting' ? true : undefined));
  return id;
}

const approvalOf = async (id: string) => (await server.call('GET', `${FLOWS}/approvals/${id}`)).body;

const expectError = (r: { status: number; body: any }, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
  expect(r.body.error).toEqual({ code, message: expect.any(String), details: expect.any(Array) });
};

describe('GET /v1/workflow-runs', () => {
  test('422 names the bad query parameter; tag_value without tag_key is 400', async () => {
    const cases: [string, string][] = [
      ['', 'project_id'], ['?project_id=acme/app&status=done', 'status'], ['?project_id=acme/app&status=cancelled', 'status'],
      ['?project_id=acme/app&limit=0', 'limit'], ['?project_id=acme/app&limit=101', 'limit'], ['?project_id=acme/app&limit=ten', 'limit'],
      ['?project_id=acme/app&cursor=bm9wZQ', 'cursor'], ['?project_id=acme/app&tag_key=', 'tag_key'],
    ];
    for (const [qs, field] of cases) {
      const r = await server.call('GET', `${WR}${qs}`);
      expectError(r, 422, 'validation_failed');
      expect(r.body.error.details).toEqual([expect.objectContaining({ field, location: 'query', message: expect.any(String) })]);
    }
    const r = await server.call('GET', `${WR}?project_id=acme/app&tag_value=prod`);
    expectError(r, 400, 'bad_request');
    expect(r.body.error.details).toEqual([expect.objectContaining({ field: 'tag_value' })]);
  });

  test('a project the token may not access is not found; a viewer reads', async () => {
    expectError(await server.call('GET', `${WR}?project_id=acme/app`, undefined, t.other), 404, 'not_found');
    const r = await server.call('GET', `${WR}?project_id=acme/app`, undefined, t.viewer);
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body)).toBe(true);
    expectError(await server.call('GET', `${WR}?project_id=acme/app`, undefined, null), 401, 'authentication_required');
  });

  test('cursor paging over more than 100 runs, several per instant: every run once, newest first, stable while runs are added', async () => {
    const base = Date.now() - 3_600_000;
    const seeded: Run[] = [];
    for (let i = 0; i < 130; i++) {
      const run = await server.services.runs.prepare({ payload: { id: 'child-call', target: 'http://127.0.0.1:9', name: `p${i}` }, repositoryIdentifier: 'acme/paging', triggeredBy: 'seed' });
      // Ten runs per millisecond: only the id tells them apart.
      Object.assign(run, { status: 'completed', createdAt: new Date(base + Math.floor(i / 10)), startedAt: new Date(), finishedAt: new Date() });
      await server.services.store.insert(run);
      seeded.push(run);
    }
    // And some that differ only in microseconds, which a JavaScript Date cannot hold.
    await server.services.orm.em.getConnection().execute(
      `update runs set created_at = created_at + (interval '1 microsecond' * (ascii(right(id::text, 1)) % 7)) where repository_identifier = 'acme/paging'`);
    const expected = (await server.services.orm.em.getConnection().execute<{ id: string }[]>(
      `select id from runs where repository_identifier = 'acme/paging' order by created_at desc, id desc`)).map((r) => r.id);
    expect(expected).toHaveLength(130);

    const seen: string[] = [];
    let url = `${WR}?project_id=acme/paging&limit=50`;
    let pages = 0;
    for (;;) {
      const r = await server.call('GET', url);
      expect(r.status).toBe(200);
      pages++;
      seen.push(...r.body.map((x: any) => x.id));
      if (pages === 1) {
        // A run started between pages is newer than the cursor: it does not shift later pages.
        const late = await server.services.runs.prepare({ payload: { id: 'child-call', target: 'http://127.0.0.1:9', name: 'late' }, repositoryIdentifier: 'acme/paging', triggeredBy: 'seed' });
        await server.services.store.insert(late);
      }
      const next = r.headers.get('x-next-cursor');
      if (!next) {
        expect(r.headers.get('link')).toBeNull();
        break;
      }
      expect(r.headers.get('link')).toBe(`<${WR}?project_id=acme%2Fpaging&limit=50&cursor=${next}>; rel="next"`);
      url = `${WR}?project_id=acme/paging&limit=50&cursor=${next}`;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(expected);
    // The default page is 50.
    expect((await server.call('GET', `${WR}?project_id=acme/paging`)).body).toHaveLength(50);
  });

  test('tags from the sfp POST /run are shown and filter the list; bounds are checked', async () => {
    const prod = await startSfp('parallel', { target: target.url }, t.dev, { tags: { env: 'prod', team: 'core' } });
    const dev = await startSfp('parallel', { target: target.url }, t.dev, { tags: { env: 'dev' } });
    const untagged = await startSfp('parallel', { target: target.url });
    const list = async (qs: string) => (await server.call('GET', `${WR}?project_id=acme/app&limit=100${qs}`)).body.map((r: any) => r.id);
    expect(await list('&tag_key=env&tag_value=prod')).toEqual([prod]);
    expect(await list('&tag_key=env')).toEqual([dev, prod]);
    expect(await list('&tag_key=team')).toEqual([prod]);
    expect(await list('&tag_key=env&tag_value=staging')).toEqual([]);
    expect((await server.call('GET', `${WR}/${prod}`)).body.tags).toEqual({ env: 'prod', team: 'core' });
    expect((await server.call('GET', `${WR}/${untagged}`)).body.tags).toEqual({});

    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']));
    for (const [tags, field] of [[tooMany, 'tags'], [{ ['k'.repeat(65)]: 'v' }, 'tags'], [{ k: 'v'.repeat(257) }, 'tags.k'], [{ k: 1 }, 'tags.k']] as const) {
      const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'parallel', repositoryIdentifier: 'acme/app', target: target.url }, tags });
      expect(r.status).toBe(400);
      expect((r.body.message as string[]).some((m) => m.startsWith(`${field}`))).toBe(true);
    }
  });

  test('status filter maps this API\'s states onto the core\'s', async () => {
    const done = await startSfp('parallel', { target: target.url });
    await waitForRun(server, done);
    const open = await waiting();
    const ids = async (status: string) => (await server.call('GET', `${WR}?project_id=acme/app&limit=100&status=${status}`)).body.map((r: any) => r.id);
    expect(await ids('completed')).toContain(done);
    expect(await ids('completed')).not.toContain(open);
    expect(await ids('running')).toContain(open);
    expect(await ids('running')).not.toContain(done);
    await server.call('DELETE', `${WR}/${open}`, undefined, t.dev);
    expect(await ids('canceled')).toContain(open);
  });
});

describe('GET /v1/workflow-runs/{id} and /steps', () => {
  test('a run started over sfp, in this API\'s shape; its steps', async () => {
    const id = await startSfp('parallel', { target: target.url });
    await waitForRun(server, id);
    const r = await server.call('GET', `${WR}/${id}`, undefined, t.viewer);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(RUN_FIELDS);
    expect(r.body).toMatchObject({
      id, workflow_id: 'parallel', project_id: 'acme/app', status: 'completed', triggered_by: 'dev@acme.io', created_by: 'dev@acme.io',
      workflow_version: null, max_parallel_steps: 0, error: null, expires_at: null, retry_of_run_id: null, parent_workflow_run_id: null, tags: {},
      payload: expect.objectContaining({ target: target.url }),
    });
    expect(Date.parse(r.body.finished_at)).toBeGreaterThanOrEqual(Date.parse(r.body.started_at));
    // A flow's step cap is the run's max_parallel_steps.
    const capped = await startSfp('wide', { target: target.url });
    expect((await server.call('GET', `${WR}/${capped}`, undefined, t.viewer)).body.max_parallel_steps).toBe(2);
    await waitForRun(server, capped);

    const steps = await server.call('GET', `${WR}/${id}/steps`, undefined, t.viewer);
    expect(steps.status).toBe(200);
    expect(steps.body.map((s: any) => s.step_ref).sort()).toEqual(['join', 'left', 'right']);
    for (const s of steps.body) expect(Object.keys(s).sort()).toEqual(STEP_FIELDS);
    expect(steps.body.find((s: any) => s.step_ref === 'join')).toMatchObject({ workflow_run_id: id, status: 'completed', deps_required: 2, deps_completed: 2, attempt: expect.any(Number) });
  });

  test('another project\'s run, an unknown run and an unknown route are 404 in this envelope', async () => {
    const id = await startSfp('parallel', { target: target.url });
    expectError(await server.call('GET', `${WR}/${id}`, undefined, t.other), 404, 'not_found');
    expectError(await server.call('GET', `${WR}/${id}/steps`, undefined, t.other), 404, 'not_found');
    expectError(await server.call('GET', `${WR}/00000000-0000-0000-0000-000000000000`), 404, 'not_found');
    expectError(await server.call('POST', `${WR}/${id}/nope`), 404, 'not_found');
    expectError(await server.call('POST', `${WR}/${id}/pause`, undefined, t.other), 404, 'not_found');
  });
});

describe('DELETE /v1/workflow-runs/{id}', () => {
  test('cancels a run started over sfp (and sfp sees it); a second cancel is 400; a viewer is refused and nothing changes', async () => {
    const id = await waiting();
    const viewer = await server.call('DELETE', `${WR}/${id}`, undefined, t.viewer);
    expectError(viewer, 403, 'forbidden');
    expectError(await server.call('DELETE', `${WR}/${id}`, undefined, t.other), 404, 'not_found');
    expectError(await server.call('DELETE', `${WR}/${id}`, undefined, t.outsider), 403, 'forbidden');
    expect((await server.call('GET', `${WR}/${id}`)).body.status).toBe('running');

    const r = await server.call('DELETE', `${WR}/${id}`, undefined, t.dev);
    expect(r.status).toBe(204);
    expect((await server.call('GET', `${FLOWS}/${id}`)).body.status).toBe('Cancelled');
    expect((await server.call('GET', `${WR}/${id}`)).body).toMatchObject({ status: 'canceled', error: expect.stringMatching(/cancelled by dev@acme.io/) });
    expect((await server.call('GET', `${WR}/${id}/steps`)).body[0].status).toBe('canceled');
    const again = await server.call('DELETE', `${WR}/${id}`, undefined, t.dev);
    expectError(again, 400, 'bad_request');
    expect(again.body.error.message).toMatch(/already cancelled/);
  });

  test('a run cancelled over sfp is canceled here', async () => {
    const id = await waiting();
    expect((await server.call('POST', `${FLOWS}/${id}/cancel`, undefined, t.dev)).status).toBe(200);
    expect((await server.call('GET', `${WR}/${id}`)).body.status).toBe('canceled');
  });
});

describe('POST /v1/workflow-runs/bulk-cancel', () => {
  test('counts and per-run results; failures are reasons, not errors', async () => {
    const [a, b] = [await waiting(), await waiting()];
    const done = await startSfp('parallel', { target: target.url });
    await waitForRun(server, done);
    const hidden = await (async () => {
      const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'acme/other' } }, t.owner);
      return r.body.id as string;
    })();
    const unknown = '00000000-0000-0000-0000-000000000000';
    const r = await server.call('POST', `${WR}/bulk-cancel`, { workflow_run_ids: [a, b, a, done, unknown, hidden] }, t.devApp);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ canceled: 2, failed: 3, workflow_run_ids: [a, b] });
    expect(r.body.results).toEqual([
      { workflow_run_id: a, status: 'canceled', error: null },
      { workflow_run_id: b, status: 'canceled', error: null },
      { workflow_run_id: done, status: 'failed', error: expect.stringMatching(/already completed/) },
      { workflow_run_id: unknown, status: 'failed', error: expect.stringMatching(/not found/) },
      { workflow_run_id: hidden, status: 'failed', error: expect.stringMatching(/not found/) },
    ]);
    expect((await server.call('GET', `${FLOWS}/${b}`)).body.status).toBe('Cancelled');
    expect((await server.call('GET', `${FLOWS}/${hidden}`)).body.status).not.toBe('Cancelled');
    // Not allowed to cancel: a failed result with the rule's reason, the run untouched, the refusal audited.
    const refused = await server.call('POST', `${WR}/bulk-cancel`, { workflow_run_ids: [hidden] }, t.outsider);
    expect(refused.body).toEqual({ canceled: 0, failed: 1, workflow_run_ids: [], results: [{ workflow_run_id: hidden, status: 'failed', error: expect.stringMatching(/may not cancel/) }] });
    expect((await server.call('GET', `${WR}/${hidden}`)).body.status).toBe('running');
    expect((await server.services.audit.list({ targetType: 'run', targetId: hidden })).map((e) => e.action)).toContain('run.cancel_refused');
    await server.call('POST', `${FLOWS}/${hidden}/cancel`, undefined, t.owner);
  });

  test('422 on a bad body; a viewer is refused', async () => {
    for (const [body, field] of [[{}, 'workflow_run_ids'], [{ workflow_run_ids: [] }, 'workflow_run_ids'], [{ workflow_run_ids: Array.from({ length: 101 }, (_, i) => `r${i}`) }, 'workflow_run_ids'], [{ workflow_run_ids: [''] }, 'workflow_run_ids.0']] as const) {
      const r = await server.call('POST', `${WR}/bulk-cancel`, body, t.dev);
      expectError(r, 422, 'validation_failed');
      expect(r.body.error.details[0]).toMatchObject({ field, location: 'body' });
    }
    const bad = await server.call('POST', `${WR}/bulk-cancel`, '{"workflow_run_ids":', t.dev);
    expectError(bad, 400, 'bad_request');
    const id = await waiting();
    expectError(await server.call('POST', `${WR}/bulk-cancel`, { workflow_run_ids: [id] }, t.viewer), 403, 'forbidden');
    expect((await server.call('GET', `${WR}/${id}`)).body.status).toBe('running');
    await server.call('DELETE', `${WR}/${id}`, undefined, t.dev);
  });
});

describe('POST /v1/workflow-runs/{id}/steps/{ref}/approve', () => {
  const approve = (id: string, token: string, ref = 'approve') => server.call('POST', `${WR}/${id}/steps/${ref}/approve`, undefined, token);

  test('refusals are 400 (not an approver, the requester), 401 (no email), 403 (viewer), 404 (other project, unknown step); nothing changes', async () => {
    const id = await gated(t.owner);
    const before = await approvalOf(id);
    const outsider = await approve(id, t.outsider);
    expectError(outsider, 400, 'bad_request');
    expect(outsider.body.error.message).toMatch(/outsider@acme.io is not an owner of acme\/app/);
    const self = await approve(id, t.owner);
    expectError(self, 400, 'bad_request');
    expect(self.body.error.message).toMatch(/own request/i);
    expectError(await approve(id, t.noEmail), 401, 'authentication_required');
    const routeRefusals = await server.services.audit.list({ targetType: 'route', targetId: 'POST /v1/workflow-runs/:workflowRunID/steps/:stepRef/approve' });
    expect(routeRefusals.map((e) => [e.actor, (e.details as { status: number }).status])).toContainEqual(['token:no-email', 401]);
    expectError(await approve(id, t.viewer), 403, 'forbidden');
    expectError(await approve(id, t.other), 404, 'not_found');
    expectError(await approve(id, t.second, 'nope'), 404, 'not_found');
    const notStarted = await approve(id, t.second, 'call');
    expectError(notStarted, 400, 'bad_request');
    expect(notStarted.body.error.message).toMatch(/has not started/);
    expect(await approvalOf(id)).toEqual(before);
    expect(before.status).toBe('pending');
    const refused = (await server.services.audit.list({ targetType: 'approval', targetId: before.id })).filter((a) => a.action === 'approval.refused');
    expect(refused.map((a) => a.actor).sort()).toEqual(['outsider@acme.io', 'owner@acme.io']);
    await server.call('DELETE', `${WR}/${id}`, undefined, t.owner);
  });

  test('an owner approves: {step_run, approval}; the run completes; approving again is 400', async () => {
    const id = await gated();
    const r = await approve(id, t.second);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.step_run).sort()).toEqual(STEP_FIELDS);
    expect(r.body.step_run).toMatchObject({ workflow_run_id: id, step_ref: 'approve' });
    expect(r.body.approval).toMatchObject({ status: 'approved', approvers: ['owner@acme.io', 'second@acme.io'], decided_by: 'second@acme.io', requested_by: 'dev@acme.io', approvals_received: 1 });
    expect((await waitForRun(server, id)).status).toBe('Completed');
    expect(target.to('/after').at(-1)!.json).toEqual({ approvedBy: ['second@acme.io'] });
    expect((await server.call('GET', `${WR}/${id}/steps`)).body.find((s: any) => s.step_ref === 'approve').status).toBe('completed');
    const again = await approve(id, t.owner);
    expectError(again, 400, 'bad_request');
    expect(again.body.error.message).toMatch(/already ended/);
  });

  test('a decided approval whose step is still waiting is 400 as already decided', async () => {
    const id = await gated();
    const [one, two] = await Promise.all([approve(id, t.second), approve(id, t.owner)]);
    expect([one.status, two.status].sort()).toEqual([200, 400]);
    expect([one, two].find((x) => x.status === 400)!.body.error.message).toMatch(/already approved|already ended/);
    await waitForRun(server, id);
  });
});

describe('engine unavailable', () => {
  test('cancel, bulk cancel and approve answer 503 service_unavailable and change nothing', async () => {
    const open = await waiting();
    const gate = await gated();
    await server.services.engine.shutdown();
    expectError(await server.call('DELETE', `${WR}/${open}`, undefined, t.dev), 503, 'service_unavailable');
    expectError(await server.call('POST', `${WR}/bulk-cancel`, { workflow_run_ids: [open] }, t.dev), 503, 'service_unavailable');
    expectError(await server.call('POST', `${WR}/${gate}/steps/approve/approve`, undefined, t.second), 503, 'service_unavailable');
    expect((await server.call('GET', `${WR}/${open}`)).body.status).toBe('running');
    expect((await approvalOf(gate)).status).toBe('pending');
  });
});

test('/openapi.json documents every workflow-runs route', async () => {
  const doc = (await server.call('GET', '/openapi.json', undefined, null)).body;
  const ops = Object.entries<Record<string, unknown>>(doc.paths).filter(([p]) => p.startsWith(WR))
    .flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`)).sort();
  expect(ops).toEqual([
    `DELETE ${WR}/{workflowRunID}`, `GET ${WR}`, `GET ${WR}/{workflowRunID}`, `GET ${WR}/{workflowRunID}/steps`,
    `POST ${WR}/bulk-cancel`, `POST ${WR}/bulk-replay`, `POST ${WR}/{workflowRunID}/pause`, `POST ${WR}/{workflowRunID}/resume`, `POST ${WR}/{workflowRunID}/retry`,
    `POST ${WR}/{workflowRunID}/steps/{stepRef}/approve`, `POST ${WR}/{workflowRunID}/steps/{stepRef}/force-complete`,
    `POST ${WR}/{workflowRunID}/steps/{stepRef}/replay-subtree`, `POST ${WR}/{workflowRunID}/steps/{stepRef}/retry`, `POST ${WR}/{workflowRunID}/steps/{stepRef}/skip`,
  ].sort());
});
