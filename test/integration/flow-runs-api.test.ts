import { Recorder } from '../support/recorder.js';
import { acmePeople, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The flow-runs API over the real server: the same runs every other API and door sees.
let server: TestServer;
const target = new Recorder();
const FR = '/api/v1/flow-runs';
const FLOWS = '/sfp/api/flows';
const WR = '/v1/workflow-runs';
const t: Record<string, string> = {};

const FIELDS = ['id', 'flowId', 'flowType', 'args', 'phase', 'startTime', 'endTime', 'actions', 'outputs', 'logs', 'tags',
  'createdAt', 'createdBy', 'updatedAt', 'updatedBy', 'reviewedBy', 'reviewedAt', 'project', 'runId'].sort();

beforeAll(async () => {
  await target.start();
  server = await startTestServer();
  Object.assign(t, await acmePeople(server));
  t.recorder = await createToken(server, { name: 'recorder', role: 'application', projects: ['acme/app'] });
  t.paging = await createToken(server, { name: 'paging', role: 'viewer', projects: ['acme/paging'] });
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

const get = (id: string, token = t.owner) => server.call('GET', `${FR}/${id}`, undefined, token);
const create = (body: Record<string, unknown>, token = t.dev) => server.call('POST', FR, body, token);
const put = (id: string, body: Record<string, unknown>, token = t.recorder) => server.call('PUT', `${FR}/${id}`, body, token);

/** Polls a flow run until its phase is one of `phases`. */
const phaseOf = (id: string, phases: string[], token = t.owner) => eventually(async () => {
  const r = await get(id, token);
  return phases.includes(r.body?.phase) ? r.body : undefined;
}, 20_000, `flow run ${id} reaching ${phases.join('/')}`);

/** A 422 naming one field, as FastAPI answers. */
function expectInvalid(r: { status: number; body: any }, loc: (string | number)[], type?: string) {
  expect(r.status).toBe(422);
  expect(r.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc, msg: expect.any(String), type: type ?? expect.any(String) })]));
}
const expectSentence = (r: { status: number; body: any }, status: number) => {
  expect(r.status).toBe(status);
  expect(r.body).toEqual({ detail: expect.any(String) });
};

describe('POST /api/v1/flow-runs', () => {
  test('starts a real run of the flow: it completes with its steps as actions, its log, outputs and tags; the other APIs see it', async () => {
    const r = await create({ id: 'hello-1', flowId: 'child-call', args: { target: target.url, name: 'one' }, tags: [{ key: 'env', value: 'prod' }], project: 'acme/app' });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual(FIELDS);
    expect(r.body).toMatchObject({ id: 'hello-1', flowId: 'child-call', flowType: 'selfServiceAction', args: { target: target.url, name: 'one' }, project: 'acme/app', tags: [{ key: 'env', value: 'prod' }] });
    expect(['pending', 'running', 'completed']).toContain(r.body.phase);
    expect(Number.isInteger(r.body.createdBy)).toBe(true);

    const done = await phaseOf('hello-1', ['completed', 'failed']);
    expect(done.phase).toBe('completed');
    expect(done.actions.map((a: any) => [a.id, a.phase])).toEqual([['call', 'completed'], ['note', 'completed']]);
    expect(done.actions.every((a: any) => a.startTime && a.endTime)).toBe(true);
    expect(done.logs).toEqual(expect.arrayContaining([expect.objectContaining({ message: 'child one done', level: 'info', action: 'note' })]));
    expect(done.outputs).toMatchObject({ name: 'one' });
    expect(done.startTime).toEqual(expect.any(String));
    expect(done.endTime).toEqual(expect.any(String));
    expect(done.reviewedBy).toBeNull();
    expect(target.to('/child/one')).toHaveLength(1);

    // The same run in the sfp and workflow-runs APIs, by its run id; and here by that id too.
    const sfp = await server.call('GET', `${FLOWS}/${done.runId}`);
    expect(sfp.body).toMatchObject({ id: done.runId, status: 'Completed', taskType: 'child-call', triggeredBy: 'dev@acme.io' });
    expect((await server.call('GET', `${WR}/${done.runId}`)).body).toMatchObject({ status: 'completed', tags: { env: 'prod' } });
    expect((await get(done.runId)).body.id).toBe('hello-1');
  });

  test('a token of one project needs no project; without an id the run id is the flow-run id', async () => {
    const r = await create({ flowId: 'child-call', args: { target: target.url, name: 'implied' } }, t.devApp);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ project: 'acme/app', id: r.body.runId });
    await phaseOf(r.body.id, ['completed']);
  });

  test('422 names the field (FastAPI detail); a taken id is 409', async () => {
    expectInvalid(await create({ flowId: 'no-such-flow', project: 'acme/app' }), ['body', 'flowId'], 'value_error');
    expectInvalid(await create({ id: 'Bad Id', flowId: 'child-call', project: 'acme/app' }), ['body', 'id'], 'string_pattern_mismatch');
    expectInvalid(await create({ flowId: 'Child/Call', project: 'acme/app' }), ['body', 'flowId'], 'string_pattern_mismatch');
    expectInvalid(await create({ project: 'acme/app' }), ['body', 'flowId'], 'missing');
    expectInvalid(await create({ flowId: 'child-call', flowType: 'chore', project: 'acme/app' }), ['body', 'flowType'], 'enum');
    expectInvalid(await create({ flowId: 'child-call', args: { name: 'x' }, project: 'acme/app' }), ['body', 'args', 'target'], 'value_error');
    expectInvalid(await create({ flowId: 'child-call', args: { id: 'gated', target: target.url, name: 'x' }, project: 'acme/app' }), ['body', 'args', 'id']);
    expectInvalid(await create({ flowId: 'child-call', tags: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }], project: 'acme/app' }), ['body', 'tags', 1, 'key']);
    // A token of several projects names one; a project it may not access is answered as an unknown one.
    expectInvalid(await create({ flowId: 'child-call', args: { target: target.url, name: 'x' } }), ['body', 'project'], 'missing');
    const hidden = await create({ flowId: 'child-call', args: { target: target.url, name: 'x' }, project: 'acme/app' }, t.other);
    const unknown = await create({ flowId: 'child-call', args: { target: target.url, name: 'x' }, project: 'acme/nowhere' }, t.dev);
    expectInvalid(hidden, ['body', 'project']);
    expectInvalid(unknown, ['body', 'project']);
    expect(hidden.body.detail[0].msg).toBe(unknown.body.detail[0].msg.replace('acme/nowhere', 'acme/app'));
    const json = await server.call('POST', FR, '{"flowId": ', t.dev);
    expectInvalid(json, ['body'], 'json_invalid');

    const first = await create({ id: 'dup-1', flowId: 'child-call', args: { target: target.url, name: 'dup' }, project: 'acme/app' });
    expect(first.status).toBe(201);
    expectSentence(await create({ id: 'dup-1', flowId: 'child-call', args: { target: target.url, name: 'dup' }, project: 'acme/app' }), 409);
    // Taken in a project the caller cannot see: the same answer, no more.
    const elsewhere = await create({ id: 'dup-1', flowId: 'child-call', args: { target: target.url, name: 'dup' }, project: 'acme/other' }, t.other);
    expectSentence(elsewhere, 409);
    await phaseOf('dup-1', ['completed']);
    expect(target.to('/child/dup')).toHaveLength(1);
  });

  test('auth: no token is 401, a viewer may read but not create (403)', async () => {
    const anonymous = await server.call('POST', FR, { flowId: 'child-call' }, null);
    expectSentence(anonymous, 401);
    expectSentence(await server.call('GET', FR, undefined, null), 401);
    const refused = await create({ flowId: 'child-call', args: { target: target.url, name: 'v' } }, t.viewer);
    expectSentence(refused, 403);
    // Refusals of known callers are audited with their reason, as in every dialect.
    const [audit] = await server.services.orm.em.getConnection().execute<{ details: any }[]>(
      `select details from audit_events where action = 'request.refused' and actor = 'token:dashboard' and details->>'path' = ? order by at desc limit 1`, [FR]);
    expect(audit.details).toMatchObject({ status: 403, reason: refused.body.detail });
    expect((await server.call('GET', FR, undefined, t.viewer)).status).toBe(200);
  });
});

describe('GET /api/v1/flow-runs', () => {
  test('cursor pages both ways, total, refetching the current page; size bounds and a bad cursor are 422', async () => {
    const base = Date.now() - 3_600_000;
    const seeded: string[] = [];
    for (let i = 0; i < 7; i++) {
      const run = await server.services.runs.prepare({ payload: { id: 'child-call', target: 'http://127.0.0.1:9', name: `p${i}` }, repositoryIdentifier: 'acme/paging', triggeredBy: 'dev@acme.io' });
      Object.assign(run, { status: 'completed', createdAt: new Date(base + i * 1000), startedAt: new Date(), finishedAt: new Date() });
      await server.services.store.insert(run);
      seeded.push(run.id);
    }
    const newest = [...seeded].reverse();
    const page = async (cursor?: string) => {
      const r = await server.call('GET', `${FR}?size=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, t.paging);
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(7);
      return r.body;
    };
    const ids = (p: any) => p.items.map((x: any) => x.runId);

    const p1 = await page();
    expect(Object.keys(p1).sort()).toEqual(['current_page', 'current_page_backwards', 'items', 'next_page', 'previous_page', 'total']);
    expect(ids(p1)).toEqual(newest.slice(0, 3));
    expect(p1.previous_page).toBeNull();
    const p2 = await page(p1.next_page);
    expect(ids(p2)).toEqual(newest.slice(3, 6));
    const p3 = await page(p2.next_page);
    expect(ids(p3)).toEqual(newest.slice(6));
    expect(p3.next_page).toBeNull();
    // Backwards from the last page to the first.
    const back2 = await page(p3.previous_page);
    expect(ids(back2)).toEqual(newest.slice(3, 6));
    const back1 = await page(back2.previous_page);
    expect(ids(back1)).toEqual(newest.slice(0, 3));
    expect(back1.previous_page).toBeNull();
    expect(back1.next_page).toEqual(expect.any(String));
    // The current page again, from its first run or from its last.
    expect(ids(await page(p2.current_page))).toEqual(newest.slice(3, 6));
    expect(ids(await page(p2.current_page_backwards))).toEqual(newest.slice(3, 6));
    // Newer runs do not shift a page fetched again by its cursor.
    const late = await server.services.runs.prepare({ payload: { id: 'child-call', target: 'http://127.0.0.1:9', name: 'late' }, repositoryIdentifier: 'acme/paging', triggeredBy: 'seed' });
    Object.assign(late, { status: 'completed', finishedAt: new Date() });
    await server.services.store.insert(late);
    const again = await server.call('GET', `${FR}?size=3&cursor=${p2.current_page}`, undefined, t.paging);
    expect(ids(again.body)).toEqual(newest.slice(3, 6));
    expect(again.body.total).toBe(8);
    // Default size: everything here on one page.
    const all = await server.call('GET', FR, undefined, t.paging);
    expect(all.body.items).toHaveLength(8);
    expect(all.body.next_page).toBeNull();

    // A page whose runs are gone is empty, and still leads back (8 runs less the one deleted).
    expect((await server.call('DELETE', `${FR}/${seeded[0]}`, undefined, t.owner)).status).toBe(204);
    const empty = await page(p2.next_page);
    expect(empty).toMatchObject({ items: [], next_page: null, current_page_backwards: null, previous_page: expect.any(String) });
    expect(ids(await page(empty.previous_page))).toEqual(newest.slice(3, 6));

    for (const size of ['0', '101', 'ten', '1.5']) expectInvalid(await server.call('GET', `${FR}?size=${size}`, undefined, t.paging), ['query', 'size']);
    expectInvalid(await server.call('GET', `${FR}?cursor=bm9wZQ`, undefined, t.paging), ['query', 'cursor'], 'value_error');
  });

  test('a run started through the sfp API is listed; another project\'s runs are not', async () => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'child-call', repositoryIdentifier: 'acme/app', target: target.url, name: 'from-sfp' } }, t.dev);
    expect(r.status).toBe(201);
    const listed = await server.call('GET', `${FR}?size=100`, undefined, t.viewer);
    const item = listed.body.items.find((x: any) => x.runId === r.body.id);
    expect(item).toMatchObject({ id: r.body.id, flowId: 'child-call', flowType: 'selfServiceAction', project: 'acme/app' });
    expect(listed.body.items.every((x: any) => x.project === 'acme/app')).toBe(true);

    const theirs = await create({ flowId: 'child-call', args: { target: target.url, name: 'other' }, project: 'acme/other' }, t.other);
    expect(theirs.status).toBe(201);
    expect((await server.call('GET', `${FR}?size=100`, undefined, t.viewer)).body.items.map((x: any) => x.runId)).not.toContain(theirs.body.runId);
    const otherList = await server.call('GET', `${FR}?size=100`, undefined, t.other);
    expect(otherList.body.items.map((x: any) => x.project)).toEqual(expect.arrayContaining(['acme/other']));
    expect(otherList.body.items.every((x: any) => x.project === 'acme/other')).toBe(true);
    expect(otherList.body.total).toBe(otherList.body.items.length);
  });
});

describe('GET /api/v1/flow-runs/{id_}', () => {
  test('404 for an unknown id and for a run of a project the token may not access, with the same answer', async () => {
    const missing = await get('no-such-run');
    expectSentence(missing, 404);
    expect(missing.body.detail).toBe('Flow run no-such-run not found');
    await create({ id: 'private-1', flowId: 'child-call', args: { target: target.url, name: 'private' }, project: 'acme/app' });
    const hidden = await get('private-1', t.other);
    expectSentence(hidden, 404);
    expect(hidden.body.detail).toBe('Flow run private-1 not found');
    expect((await get('private-1', t.viewer)).status).toBe(200);
  });
});

describe('PUT /api/v1/flow-runs/{id_}', () => {
  test('records a run an external system executes, then replaces its record as it goes; an ended record is final except its labels', async () => {
    const started = '2025-01-20T18:53:03.558Z';
    const r = await put('nightly-export-1', {
      flowId: 'nightly-export', flowType: 'automation', phase: 'running', args: { table: 'orders' }, startTime: started,
      actions: [{ id: 'extract', phase: 'running', startTime: started }],
      logs: [{ timestamp: started, message: 'extract started', level: 'info', action: 'extract' }],
      tags: [{ key: 'team', value: 'data' }],
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      id: 'nightly-export-1', flowId: 'nightly-export', flowType: 'automation', phase: 'running', args: { table: 'orders' }, startTime: started, endTime: null,
      actions: [{ id: 'extract', phase: 'running', startTime: started, endTime: null }],
      logs: [{ timestamp: started, message: 'extract started', level: 'info', action: 'extract' }],
      tags: [{ key: 'team', value: 'data' }], project: 'acme/app',
    });
    const recorder = r.body.createdBy;
    expect(Number.isInteger(recorder)).toBe(true);
    expect(r.body.updatedBy).toBe(recorder);
    // An external run in the sfp API: Flowgate records it, never executes it.
    const sfp = await server.call('GET', `${FLOWS}/${r.body.runId}`);
    expect(sfp.body).toMatchObject({ status: 'Running', engine: 'external', triggeredBy: 'app:recorder', taskType: 'nightly-export' });
    expect(sfp.body.steps).toEqual([expect.objectContaining({ ref: 'extract', kind: 'external', status: 'running' })]);

    const ended = '2025-01-20T19:00:00.000Z';
    const u = await put('nightly-export-1', {
      flowId: 'nightly-export', flowType: 'automation', phase: 'completed', args: { table: 'orders' }, startTime: started, endTime: ended,
      actions: [{ id: 'extract', phase: 'completed', startTime: started, endTime: ended }, { id: 'load', phase: 'declined' }],
      outputs: { rows: 42 },
      logs: [{ timestamp: started, message: 'extract started', level: 'info', action: 'extract' }, { timestamp: ended, message: 'done', level: 'warn' }],
      tags: [{ key: 'team', value: 'data' }, { key: 'tier', value: 'gold' }],
    }, t.owner);
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({
      phase: 'completed', endTime: ended, outputs: { rows: 42 },
      actions: [{ id: 'extract', phase: 'completed', endTime: ended }, { id: 'load', phase: 'declined' }],
      logs: [{ message: 'extract started', action: 'extract' }, { timestamp: ended, message: 'done', level: 'warn', action: null }],
      tags: [{ key: 'team', value: 'data' }, { key: 'tier', value: 'gold' }], createdBy: recorder,
    });
    expect(u.body.updatedBy).not.toBe(recorder);
    expect(Date.parse(u.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(r.body.updatedAt));
    expect((await server.call('GET', `${FLOWS}/${r.body.runId}`)).body.status).toBe('Completed');
    expect((await server.call('GET', `${FLOWS}/${r.body.runId}/logs`)).body.logs.map((l: any) => l.message)).toEqual(['extract started', 'done']);

    // Ended: another phase is refused, the same one relabels.
    expectSentence(await put('nightly-export-1', { flowId: 'nightly-export', flowType: 'automation', phase: 'running' }), 409);
    const relabelled = await put('nightly-export-1', { flowId: 'nightly-export', flowType: 'reference', phase: 'completed', tags: [{ key: 'team', value: 'bi' }] });
    expect(relabelled.status).toBe(200);
    expect(relabelled.body).toMatchObject({ flowType: 'reference', phase: 'completed', tags: [{ key: 'team', value: 'bi' }], outputs: { rows: 42 } });
    expect(relabelled.body.logs).toHaveLength(2);
    expectSentence(await put('nightly-export-1', { flowId: 'other-export', flowType: 'automation' }), 409);
  });

  test('phases round-trip (declined, waitingForApproval, pending) and read as the other APIs\' statuses', async () => {
    const cases: [string, string][] = [['declined', 'Failed'], ['waitingForApproval', 'Suspended'], ['pending', 'Running'], ['cancelled', 'Cancelled']];
    for (const [phase, sfpStatus] of cases) {
      const r = await put(`phase-${phase.toLowerCase()}`, { flowId: 'external-flow', flowType: 'selfServiceAction', phase });
      expect(r.status).toBe(201);
      expect(r.body.phase).toBe(phase);
      expect((await get(r.body.id)).body.phase).toBe(phase);
      expect((await server.call('GET', `${FLOWS}/${r.body.runId}`)).body.status).toBe(sfpStatus);
    }
    // A null phase keeps the phase.
    const kept = await put('phase-pending', { flowId: 'external-flow', flowType: 'selfServiceAction', phase: null, tags: [{ key: 'k', value: 'v' }] });
    expect(kept.body).toMatchObject({ phase: 'pending', tags: [{ key: 'k', value: 'v' }] });
  });

  test('a run Flowgate executes: PUT relabels it, and refuses to change its flow, phase or args', async () => {
    const r = await create({ id: 'labelled-1', flowId: 'child-call', args: { target: target.url, name: 'label' }, project: 'acme/app' });
    expect(r.status).toBe(201);
    const done = await phaseOf('labelled-1', ['completed']);
    const body = { flowId: 'child-call', flowType: 'automation', args: done.args, phase: 'completed', tags: [{ key: 'owner', value: 'dev' }] };
    const u = await put('labelled-1', { ...done, ...body }, t.dev);
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({ flowType: 'automation', tags: [{ key: 'owner', value: 'dev' }], phase: 'completed', actions: done.actions, outputs: done.outputs });
    expect((await server.call('GET', `${WR}/${done.runId}`)).body.tags).toEqual({ owner: 'dev' });
    expectSentence(await put('labelled-1', { ...body, flowId: 'gated' }, t.dev), 409);
    expectSentence(await put('labelled-1', { ...body, phase: 'cancelled' }, t.dev), 409);
    expectSentence(await put('labelled-1', { ...body, args: { target: target.url, name: 'changed' } }, t.dev), 409);
    expect((await get('labelled-1')).body.flowType).toBe('automation');
  });

  test('validation, roles and ids of other projects', async () => {
    expectInvalid(await put('Bad Id', { flowId: 'x', flowType: 'automation' }), ['path', 'id_'], 'string_pattern_mismatch');
    expectInvalid(await put('ok-id', { id: 'other-id', flowId: 'x', flowType: 'automation' }), ['body', 'id']);
    expectInvalid(await put('ok-id', { flowId: 'x' }), ['body', 'flowType'], 'missing');
    expectInvalid(await put('ok-id', { flowId: 'x', flowType: 'automation', phase: 'done' }), ['body', 'phase'], 'enum');
    expectInvalid(await put('ok-id', { flowId: 'x', flowType: 'automation', startTime: 'yesterday' }), ['body', 'startTime']);
    expectInvalid(await put('ok-id', { flowId: 'x', flowType: 'automation', actions: [{ id: 'a' }, { id: 'a' }] }), ['body', 'actions', 1, 'id']);
    expectInvalid(await put('ok-id', { flowId: 'x', flowType: 'automation', logs: [{ message: 'm', level: 'loud' }] }), ['body', 'logs', 0, 'level'], 'enum');
    expect((await get('ok-id')).status).toBe(404);
    expectSentence(await put('viewer-run', { flowId: 'x', flowType: 'automation' }, t.viewer), 403);
    // The id of a run the caller cannot see is taken: neither created nor changed.
    expect((await put('theirs-1', { flowId: 'x', flowType: 'automation' }, t.other)).status).toBe(201);
    expectSentence(await put('theirs-1', { flowId: 'x', flowType: 'automation', project: 'acme/app' }), 409);
    expect((await get('theirs-1', t.other)).body).toMatchObject({ project: 'acme/other', phase: 'running' });
    // Someone who may not control the run (not of its project, not its starter) is refused.
    expectSentence(await put('theirs-1', { flowId: 'x', flowType: 'automation', phase: 'completed' }, t.outsider), 403);
  });
});

describe('DELETE /api/v1/flow-runs/{id_}', () => {
  test('an active run is 409; once ended it goes with its steps and log (audited), then 404', async () => {
    const r = await create({ id: 'waiting-1', flowId: 'waiter', project: 'acme/app' });
    expect(r.status).toBe(201);
    const runId = r.body.runId;
    await phaseOf('waiting-1', ['running']);
    await eventually(async () => ((await get('waiting-1')).body.actions.some((a: any) => a.id === 'wait') ? true : undefined));
    expectSentence(await server.call('DELETE', `${FR}/waiting-1`, undefined, t.dev), 409);
    expectSentence(await server.call('DELETE', `${FR}/waiting-1`, undefined, t.viewer), 403);
    expectSentence(await server.call('DELETE', `${FR}/waiting-1`, undefined, t.outsider), 403);
    expectSentence(await server.call('DELETE', `${FR}/waiting-1`, undefined, t.other), 404);
    expectInvalid(await server.call('DELETE', `${FR}/Not%20An%20Id`, undefined, t.dev), ['path', 'id_']);

    expect((await server.call('DELETE', `${WR}/${runId}`, undefined, t.dev)).status).toBe(204);
    await phaseOf('waiting-1', ['cancelled']);
    const gone = await server.call('DELETE', `${FR}/waiting-1`, undefined, t.dev);
    expect(gone.status).toBe(204);
    expect(gone.body).toBeUndefined();
    expectSentence(await get('waiting-1'), 404);
    expect((await server.call('GET', `${FLOWS}/${runId}`)).status).toBe(404);
    expectSentence(await server.call('DELETE', `${FR}/waiting-1`, undefined, t.dev), 404);
    const conn = server.services.orm.em.getConnection();
    const [{ n }] = await conn.execute<{ n: number }[]>('select (select count(*) from log_lines where run_id = ?) + (select count(*) from step_runs where run_id = ?) + (select count(*) from flow_run_records where run_id = ?) as n', [runId, runId, runId]);
    expect(Number(n)).toBe(0);
    const audited = await server.services.audit.list({ targetType: 'run', targetId: runId });
    expect(audited.find((a) => a.action === 'run.deleted')).toMatchObject({ actor: 'dev@acme.io', details: expect.objectContaining({ flowRunId: 'waiting-1', deleted: [runId] }) });
    // The id is free again.
    expect((await put('waiting-1', { flowId: 'waiter', flowType: 'automation', phase: 'completed' })).status).toBe(201);
  });
});

describe('people: createdBy, updatedBy, reviewedBy', () => {
  const gated = async (id: string) => {
    const r = await create({ id, flowId: 'gated', args: { target: target.url }, project: 'acme/app' });
    expect(r.status).toBe(201);
    return (await phaseOf(id, ['waitingForApproval'])) as any;
  };

  test('reviewedBy and reviewedAt name who decided the approval; a rejected run is declined', async () => {
    const waiting = await gated('gated-approved');
    expect(waiting.actions).toEqual([expect.objectContaining({ id: 'approve', phase: 'waitingForApproval' })]);
    expect(waiting.reviewedBy).toBeNull();
    const approved = await server.call('POST', `${FLOWS}/approvals/${waiting.runId}/approve`, { approver: 'owner', approverEmail: 'owner@acme.io' }, t.owner);
    expect(approved.status).toBe(200);
    const done = await phaseOf('gated-approved', ['completed', 'failed']);
    expect(done.phase).toBe('completed');
    expect(Date.parse(done.reviewedAt)).toBe(Date.parse(approved.body.resolvedAt));

    const ownRun = await create({ flowId: 'child-call', args: { target: target.url, name: 'owner' }, project: 'acme/app' }, t.owner);
    expect(done.reviewedBy).toBe(ownRun.body.createdBy);
    expect(done.reviewedBy).not.toBe(done.createdBy);

    const rejectedRun = await gated('gated-rejected');
    const rejected = await server.call('POST', `${FLOWS}/approvals/${rejectedRun.runId}/reject`, { rejector: 'second', rejectorEmail: 'second@acme.io', reason: 'freeze' }, t.second);
    expect(rejected.status).toBe(200);
    const declined = await phaseOf('gated-rejected', ['declined', 'failed', 'completed']);
    expect(declined.phase).toBe('declined');
    expect(declined.actions[0]).toMatchObject({ id: 'approve', phase: 'declined' });
    expect(Number.isInteger(declined.reviewedBy)).toBe(true);
    expect(declined.reviewedBy).not.toBe(done.reviewedBy);
    expect(declined.reviewedAt).toEqual(expect.any(String));
    expect((await waitForRun(server, rejectedRun.runId)).status).toBe('Failed');
  });

  test('createdBy is one stable integer per person, whichever API or token started the run', async () => {
    const a = await create({ flowId: 'child-call', args: { target: target.url, name: 'p1' }, project: 'acme/app' }, t.dev);
    const b = await create({ flowId: 'child-call', args: { target: target.url, name: 'p2' } }, t.devApp);
    const viaSfp = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'child-call', repositoryIdentifier: 'acme/app', target: target.url, name: 'p3' } }, t.dev);
    const c = await get(viaSfp.body.id);
    const owner = await create({ flowId: 'child-call', args: { target: target.url, name: 'p4' }, project: 'acme/app' }, t.owner);
    expect(Number.isInteger(a.body.createdBy)).toBe(true);
    expect([b.body.createdBy, c.body.createdBy]).toEqual([a.body.createdBy, a.body.createdBy]);
    expect(owner.body.createdBy).not.toBe(a.body.createdBy);
    // Listed with the same number.
    const listed = await server.call('GET', `${FR}?size=100`, undefined, t.viewer);
    expect(listed.body.items.find((x: any) => x.runId === a.body.runId).createdBy).toBe(a.body.createdBy);
    const [{ n }] = await server.services.orm.em.getConnection().execute<{ n: number }[]>(`select count(*)::int as n from person_numbers where person = 'dev@acme.io'`);
    expect(n).toBe(1);
  });
});

test('the flow-runs routes are documented in /openapi.json', async () => {
  const doc = (await server.call('GET', '/openapi.json')).body;
  expect(Object.keys(doc.paths[FR]).sort()).toEqual(['get', 'post']);
  expect(Object.keys(doc.paths[`${FR}/{id_}`]).sort()).toEqual(['delete', 'get', 'put']);
  expect(doc.paths[FR].get.parameters.map((p: any) => p.name).sort()).toEqual(['cursor', 'size']);
});
