import pg from 'pg';
import { freshDatabaseUrl } from '../support/database.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { eventually } from '../support/server.js';

// Two Flowgate processes on one database: a schedule fires once per tick, and each run is
// executed by exactly one of them.
const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
let a: ServerProcess;
let b: ServerProcess;
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await freshDatabaseUrl('e2e_replicas');
  const env = { DATABASE_URL: databaseUrl, FLOWGATE_SCHEDULER_POLL_MS: '300' };
  a = await startServerProcess({ ...env, FLOWGATE_EXECUTOR_ID: 'replica-a' });
  b = await startServerProcess({ ...env, FLOWGATE_EXECUTOR_ID: 'replica-b' });
  expect((await a.call('PUT', '/api/v1/projects/sched/app', { provider: 'github', owners: ['o@acme.io'] })).status).toBe(201);
}, TIMEOUT);

afterAll(async () => {
  try {
    for (const p of [a, b]) if (p?.running()) expect(await p.stop(30_000)).toEqual({ code: 0, signal: null });
  } finally {
    await killAllServerProcesses();
  }
}, TIMEOUT);

test('one run per firing of a schedule with two replicas up', async () => {
  // Resumed on one replica, paused later on the other: both act on the same durable schedule.
  expect((await a.call('POST', `${FLOWS}/schedules/ticker-every-2s/resume`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 9000));
  expect((await b.call('POST', `${FLOWS}/schedules/ticker-every-2s/pause`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 2500));

  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const runs = await eventually(async () => {
      const { rows } = await client.query(`select status from runs where schedule_path = 'ticker-every-2s'`);
      return rows.length >= 3 && rows.every((r) => r.status === 'completed') ? rows : undefined;
    }, 30_000, 'scheduled runs completed');
    const { rows: firings } = await client.query(`select details->>'scheduledFor' as at from audit_events where action = 'run.started' and actor = 'cron'`);
    // Every run belongs to a different tick: nothing fired twice.
    expect(new Set(firings.map((f) => f.at)).size).toBe(runs.length);
    expect(firings).toHaveLength(runs.length);
    // About one firing per 2 s over ~10 s, not two.
    expect(runs.length).toBeLessThanOrEqual(7);
    // Each run's steps ran once.
    const { rows: steps } = await client.query(`select count(*)::int as n from step_runs s join runs r on r.id = s.run_id where r.schedule_path = 'ticker-every-2s'`);
    expect(steps[0].n).toBe(runs.length);
  } finally {
    await client.end();
  }
}, TIMEOUT);

test('a run started on one replica is woken by an event delivered through the other', async () => {
  const started = await a.call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'sched/app' } });
  expect(started.status).toBe(201);
  await eventually(async () => ((await b.call('GET', `${FLOWS}/${started.body.id}`)).body.status === 'Waiting' ? true : undefined));
  const delivered = await b.call('POST', `/api/v1/runs/${started.body.id}/events`, { event: 'go', payload: { value: 'from b' } });
  expect(delivered.status).toBe(202);
  const done = await eventually(async () => {
    const r = await a.call('GET', `${FLOWS}/${started.body.id}`);
    return r.body.status === 'Completed' ? r.body : undefined;
  });
  expect(done.steps.find((s: any) => s.ref === 'done').output.message).toBe('got from b');
}, TIMEOUT);
