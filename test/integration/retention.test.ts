import { DBOS } from '@dbos-inc/dbos-sdk';
import { randomUUID } from 'node:crypto';
import { Retention } from '../../src/core/maintenance/retention.js';
import { retakeStalledDeliveries } from '../../src/doors/inbound.js';
import { forgetRunWorkflows } from '../../src/engine/forget-workflows.js';
import { appKey, commentPayload, deliver, FakeGithub } from '../fakes/github.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// Housekeeping by the sweep: retention, and door deliveries a crash left `processing`.
const FLOWS = '/sfp/api/flows';
const GITHUB_SECRET = 'gh-webhook-secret-0123456789';
const key = appKey();
const github = new FakeGithub('4244', key.publicKey);
const ci = new Recorder();
let server: TestServer;
let app: string;

beforeAll(async () => {
  await github.start();
  await ci.start();
  github.installations.set('acme/app', 7);
  ci.respond((r) => ((r.json as { event?: string })?.event === 'cicd.dispatch' ? { body: { cicdRunId: 'ci-1' } } : undefined));
  server = await startTestServer({
    env: {
      // The sweep stays out of the way: the tests run its tasks themselves.
      FLOWGATE_SWEEP_INTERVAL_MS: '3600000',
      // Runs of the previous engine: retention also forgets their DBOS workflows.
      FLOWGATE_ENGINE: 'dbos',
      FLOWGATE_WEBHOOK_SECRET: 'whsec-retention-0123456789', FLOWGATE_CICD_WEBHOOK_URL: `${ci.url}/dispatch`,
      GITHUB_APP_ID: '4244', GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, GITHUB_API_URL: github.url,
    },
  });
  await createProject(server, 'acme/app');
  app = await createToken(server, { name: 'engine', role: 'application' });
});
afterAll(async () => {
  await server?.stop();
  await github.stop();
  await ci.stop();
});

const db = () => server.services.orm.em.fork().getConnection();
const count = async (sql: string, params: unknown[] = []) => (await db().execute<{ n: number }[]>(`select count(*)::int as n from ${sql}`, params))[0].n;
/** A uuid[] parameter (the ORM's connection would spread a JS array into a list). */
const uuids = (ids: string[]) => `{${ids.join(',')}}`;
const existing = async (ids: string[]) => (await db().execute<{ id: string }[]>('select id from runs where id = any(?::uuid[])', [uuids(ids)])).map((r) => r.id).sort();

async function start(id: string, params: Record<string, unknown> = {}) {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id, repositoryIdentifier: 'acme/app', ...params } });
  expect(r.status).toBe(201);
  return r.body.id as string;
}
async function child(parentId: string) {
  const r = await server.call('POST', `${FLOWS}/internal/register-child`, { parentTaskExecutionId: parentId, taskType: 't', flowPath: 'f', repositoryIdentifier: 'acme/app' }, app);
  expect(r.status).toBe(201);
  return r.body.executionId as string;
}
const suspended = (id: string) => waitForRun(server, id, ['Suspended']);
const backdate = (ids: string[], days = 100) => db().execute(`update runs set finished_at = now() - make_interval(days => ?) where id = any(?::uuid[])`, [days, uuids(ids)]);

describe('retention', () => {
  test('old finished runs go with their steps, logs, approvals, children, execution tokens and engine workflows; runs still referenced stay', async () => {
    // Gone: a run cancelled at its approval (steps, log lines, a cancelled approval) ...
    const gated = await start('gated', { target: 'http://127.0.0.1:9' });
    await suspended(gated);
    expect((await server.call('POST', `${FLOWS}/${gated}/cancel`)).status).toBe(200);
    // ... a finished cicd run and its execution token ...
    const cicd = await start('cicd-webhook', { commitSha: 'abc123' });
    await eventually(async () => ((await count('api_tokens where run_id = ?', [cicd])) === 1 ? true : undefined));
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${cicd}`)).body.engineStatus === 'running' ? true : undefined));
    expect((await server.call('POST', `${FLOWS}/executions/${cicd}/status`, { status: 'completed' }, app)).status).toBe(200);
    // ... and a finished root with its finished child.
    const root = await start('waiter');
    const rootChild = await child(root);
    expect((await server.call('POST', `${FLOWS}/${root}/cancel`)).body.cancelledExecutionIds).toHaveLength(2);

    // Kept: a run that ended with its approval still pending (a crash between the two) ...
    const pending = await start('gated', { target: 'http://127.0.0.1:9' });
    await suspended(pending);
    await db().execute(`update runs set status = 'failed' where id = ?`, [pending]);
    // ... an old finished child of a parent still running ...
    const running = await start('waiter');
    const finishedChild = await child(running);
    await db().execute(`update runs set status = 'completed' where id = ?`, [finishedChild]);
    // ... an old finished root whose child still runs ...
    const liveRoot = await start('waiter');
    const liveChild = await child(liveRoot);
    await db().execute(`update runs set status = 'completed' where id = ?`, [liveRoot]);
    // ... and a run that finished recently.
    const recent = await start('gated', { target: 'http://127.0.0.1:9' });
    await suspended(recent);
    await server.call('POST', `${FLOWS}/${recent}/cancel`);

    const gone = [gated, cicd, root, rootChild];
    const kept = [pending, running, finishedChild, liveRoot, liveChild, recent];
    await backdate([...gone, pending, finishedChild, liveRoot]);
    expect(await count('step_runs where run_id = ?', [gated])).toBeGreaterThan(0);
    expect(await count('log_lines where run_id = any(?::uuid[])', [uuids(gone)])).toBeGreaterThan(0);
    expect(await count('approvals where run_id = ?', [gated])).toBe(1);
    expect((await DBOS.getWorkflowStatus(`run-${gated}`))?.status).toBeDefined();

    // Two roots per statement: the walk goes on past the roots that must stay.
    const counts = await new Retention(server.services.orm, { retentionDays: 90, auditRetentionDays: 365, batch: 2, forgetWorkflows: forgetRunWorkflows }).prune();
    expect(counts.runs).toBe(gone.length);
    expect(await existing([...gone, ...kept])).toEqual([...kept].sort());
    for (const table of ['step_runs', 'log_lines', 'approvals', 'api_tokens']) expect({ table, n: await count(`${table} where run_id = any(?::uuid[])`, [uuids(gone)]) }).toEqual({ table, n: 0 });
    expect(await count('approvals where run_id = ? and status = \'pending\'', [pending])).toBe(1);
    expect(await DBOS.getWorkflowStatus(`run-${gated}`)).toBeNull();
    expect(await DBOS.getWorkflowStatus(`run-${cicd}`)).toBeNull();
    expect((await server.call('GET', `${FLOWS}/${gated}`)).status).toBe(404);
    expect((await server.call('GET', `${FLOWS}/${recent}`)).status).toBe(200);

    for (const id of [running, liveRoot]) await server.call('POST', `${FLOWS}/${id}/cancel`);
  });

  test('audit events, finished deliveries, decided external approvals and tokens expired longer than the retention go; the rest stays', async () => {
    const tag = randomUUID();
    const audit = async (days: number) => {
      const [{ id }] = await db().execute<{ id: string }[]>(
        `insert into audit_events (id, at, actor, door, action, target_type, target_id) values (?, now() - make_interval(days => ?), 'test', 'rest', 'test.event', 'test', ?) returning id`,
        [randomUUID(), days, tag]);
      return id;
    };
    const delivery = async (status: string, days: number) => {
      const id = `${tag}:${status}:${days}`;
      await db().execute(`insert into inbound_deliveries (door, delivery_id, status, received_at, updated_at) values ('test', ?, ?, now() - make_interval(days => ?), now() - make_interval(days => ?))`, [id, status, days, days]);
      return id;
    };
    const approval = async (status: string, days: number) => {
      const id = randomUUID();
      await db().execute(`insert into approvals (id, requested_by, status, requested_at, expires_at, engine_run_id) values (?, 'someone@acme.io', ?, now() - make_interval(days => ?), now() + interval '1 day', ?)`, [id, status, days, tag]);
      return id;
    };
    const token = async (expiredDaysAgo: number | null) => {
      const id = randomUUID();
      await db().execute(`insert into api_tokens (id, name, role, token_hash, expires_at) values (?, ?, 'application', ?, ${expiredDaysAgo === null ? 'null' : 'now() - make_interval(days => ?)'})`,
        [id, `t-${tag}`, randomUUID(), ...(expiredDaysAgo === null ? [] : [expiredDaysAgo])]);
      return id;
    };

    const goneAudit = [await audit(400), await audit(380), await audit(366)];
    const keptAudit = [await audit(100), await audit(0)];
    const goneDeliveries = [await delivery('done', 100), await delivery('failed', 91)];
    const keptDeliveries = [await delivery('processing', 100), await delivery('done', 10)];
    const goneApprovals = [await approval('approved', 100), await approval('expired', 95)];
    const keptApprovals = [await approval('pending', 100), await approval('rejected', 5)];
    const goneTokens = [await token(100)];
    const keptTokens = [await token(1), await token(null)];

    const counts = await new Retention(server.services.orm, { retentionDays: 90, auditRetentionDays: 365, batch: 2 }).prune();
    expect(counts).toMatchObject({ auditEvents: 3, deliveries: 2, approvals: 2, tokens: 1 });
    const ids = async (sql: string) => (await db().execute<{ id: string }[]>(sql, [tag])).map((r) => r.id).sort();
    expect(await ids('select id from audit_events where target_id = ?')).toEqual([...keptAudit].sort());
    expect(await ids(`select delivery_id as id from inbound_deliveries where door = 'test' and delivery_id like ? || '%'`)).toEqual([...keptDeliveries].sort());
    expect(await ids('select id from approvals where engine_run_id = ?')).toEqual([...keptApprovals].sort());
    expect(await ids(`select id from api_tokens where name = 't-' || ?`)).toEqual([...keptTokens].sort());
    void goneAudit; void goneDeliveries; void goneApprovals; void goneTokens;
  });
});

describe('door deliveries a crash left processing', () => {
  let issues = 700;
  /** `/flowgate help` in a new issue: the reply shows the delivery was processed. */
  async function helpAsked() {
    const issue = ++issues;
    const payload = commentPayload({ issueNumber: issue, login: 'octo-dev', body: '/flowgate help' });
    const first = await deliver(server.url, GITHUB_SECRET, 'issue_comment', payload);
    expect(first.body).toEqual({ accepted: 1, duplicate: 0 });
    await eventually(async () => (github.commentsOn('acme/app', issue).length === 1 ? true : undefined), 20_000, 'the help reply');
    const [row] = await db().execute<{ delivery_id: string; status: string }[]>(
      `select delivery_id, status from inbound_deliveries where door = 'github' order by received_at desc limit 1`);
    await eventually(async () => ((await db().execute<{ status: string }[]>(`select status from inbound_deliveries where door = 'github' and delivery_id = ?`, [row.delivery_id]))[0].status === 'done' ? true : undefined));
    return { issue, payload, key: row.delivery_id };
  }
  const replies = (issue: number) => github.commentsOn('acme/app', issue).length;

  test('a redelivery processes again a delivery left processing past its lease; within the lease it is a duplicate', async () => {
    const { issue, payload, key } = await helpAsked();
    // The process died after recording the delivery and before processing it.
    await db().execute(`update inbound_deliveries set status = 'processing' where door = 'github' and delivery_id = ?`, [key]);

    const early = await deliver(server.url, GITHUB_SECRET, 'issue_comment', payload);
    expect(early.body).toEqual({ accepted: 0, duplicate: 1 });

    await db().execute(`update inbound_deliveries set updated_at = now() - interval '5 minutes' where door = 'github' and delivery_id = ?`, [key]);
    const again = await deliver(server.url, GITHUB_SECRET, 'issue_comment', payload);
    expect(again.body).toEqual({ accepted: 1, duplicate: 0 });
    await eventually(async () => (replies(issue) === 2 ? true : undefined), 20_000, 'the help reply of the retaken delivery');
    await eventually(async () => {
      const [row] = await db().execute<{ status: string; attempts: number }[]>(`select status, attempts from inbound_deliveries where door = 'github' and delivery_id = ?`, [key]);
      return row.status === 'done' ? row : undefined;
    }).then((row) => expect(row.attempts).toBe(2));
  });

  test('the sweep processes a delivery left processing past its lease (with what the door accepted)', async () => {
    const { issue, key } = await helpAsked();
    // Recorded by another replica, which died before processing it: a copy under another key.
    const stuck = `${key}:stuck`;
    await db().execute(
      `insert into inbound_deliveries (door, delivery_id, status, payload, received_at, updated_at)
       select door, ?, 'processing', payload, now() - interval '5 minutes', now() - interval '5 minutes' from inbound_deliveries where door = 'github' and delivery_id = ?`, [stuck, key]);
    expect(await retakeStalledDeliveries()).toBe(1);
    await eventually(async () => (replies(issue) === 2 ? true : undefined), 20_000, 'the help reply of the swept delivery');
    await eventually(async () => ((await db().execute<{ status: string }[]>(`select status from inbound_deliveries where door = 'github' and delivery_id = ?`, [stuck]))[0].status === 'done' ? true : undefined));
    // Taken once: a second sweep finds nothing left to do.
    expect(await retakeStalledDeliveries()).toBe(0);
  });
});
