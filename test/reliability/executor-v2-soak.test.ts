import pg from 'pg';
import { freshDatabaseUrl } from '../support/database.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually } from '../support/server.js';

// Engine v2 under repeated fire: two processes on one database, one of them killed with SIGKILL
// every few seconds (and started again) while 1,000 runs — HTTP calls around sleeps, approvals,
// fan-outs of child runs — go through. Every run must end completed, no step whose completion was
// flushed may call out again (the Recorder's clock against the step's finished_at), every approval
// is decided once, and no child run is created twice.
const TIMEOUT = 300_000;
const FLOWS = '/sfp/api/flows';
const OWNER = 'owner@acme.io';
const target = new Recorder();
const RUNS = { calls: 600, gated: 200, fanOut: 200 };
/** Kills made while runs were in flight, at least. */
const KILLS = 4;

beforeAll(async () => {
  await target.start();
  // First calls answer late: kills land inside HTTP calls as well as inside sleeps.
  target.respond((r) => (/^\/c\d+\/first$/.test(r.path) ? { delayMs: 300 } : undefined));
}, TIMEOUT);
afterAll(async () => {
  await killAllServerProcesses();
  await target.stop();
}, TIMEOUT);

const env = (databaseUrl: string, id: string) => ({ DATABASE_URL: databaseUrl, FLOWGATE_ENGINE: 'v2', FLOWGATE_EXECUTOR_ID: id, FLOWGATE_LEASE_MS: '2000' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('kill -9 of one of two v2 processes every few seconds while 1,000 runs go through: every run completes, flushed steps never call again, approvals decided once', async () => {
  const databaseUrl = await freshDatabaseUrl('v2_soak');
  const procs: Record<'a' | 'b', ServerProcess> = { a: await startServerProcess(env(databaseUrl, 'soak-a')), b: await startServerProcess(env(databaseUrl, 'soak-b')) };
  expect((await procs.a.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: [OWNER] })).status).toBe(201);
  const owner = (await procs.a.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: OWNER })).body.token as string;
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  /** Whichever process answers: the other may be dead or starting. */
  const call = async (method: string, p: string, body?: unknown, token?: string) => {
    for (let i = 0; ; i++) {
      for (const proc of i % 2 ? [procs.b, procs.a] : [procs.a, procs.b]) {
        const r = await proc.call(method, p, body, token).catch(() => null);
        if (r && r.status < 500) return r;
      }
      if (i > 100) throw new Error(`${method} ${p}: no process answered`);
      await sleep(100);
    }
  };

  let stop = false;
  const started: string[] = [];
  try {
    // The killer: one process dies (alternating) and is started again under its name, a second after the last one is back.
    let kills = 0;
    let rounds = 0;
    const killer = (async () => {
      while (!stop) {
        await sleep(1_000);
        if (stop) break;
        const name = rounds++ % 2 ? 'b' : 'a';
        const { rows } = await db.query(`select count(*)::int as n from runs where status not in ('completed','partial','failed','cancelled','timed_out')`);
        procs[name].kill('SIGKILL');
        await procs[name].exited;
        if (rows[0].n > 0) kills++;
        procs[name] = await startServerProcess(env(databaseUrl, `soak-${name}`));
      }
    })();
    // The approver: decides each pending approval once, through a live process. It starts deciding
    // after the killer's first KILLS kills, so those land while runs are surely in flight (the
    // gated ones wait), however fast the rest goes through.
    const approver = (async () => {
      while (!stop) {
        if (kills < KILLS) {
          await sleep(200);
          continue;
        }
        const { rows } = await db.query(`select id from approvals where status = 'pending'`);
        for (const a of rows) {
          const r = await call('POST', `${FLOWS}/approvals/${a.id}/approve`, { approver: 'O', approverEmail: OWNER }, owner).catch(() => null);
          // 409: decided meanwhile (a retried request whose first try was recorded) — still one decision.
          if (r && r.status !== 200 && r.status !== 409) throw new Error(`approve ${a.id}: ${r.status} ${JSON.stringify(r.body)}`);
        }
        await sleep(1_000);
      }
    })();

    // A start whose answer was lost to a kill may have been committed: the tag says, so each is started once.
    const start = async (key: string, payload: Record<string, unknown>) => {
      for (let i = 0; ; i++) {
        const proc = i % 2 ? procs.b : procs.a;
        const r = await proc.call('POST', `${FLOWS}/run`, { payload: { repositoryIdentifier: 'acme/app', ...payload }, tags: { soak: key } }).catch(() => null);
        if (r?.status === 201) return void started.push(r.body.id);
        if (r && r.status < 500) throw new Error(`start ${key}: ${r.status} ${JSON.stringify(r.body)}`);
        const { rows } = await db.query(`select id from runs where tags->>'soak' = $1`, [key]);
        if (rows.length) return void started.push(rows[0].id);
        if (i > 100) throw new Error(`start ${key}: no process answered`);
        await sleep(50);
      }
    };
    const jobs: (() => Promise<void>)[] = [];
    // Interleaved: calls, approvals and fan-outs side by side.
    for (let i = 0; i < RUNS.calls; i++) {
      jobs.push(() => start(`c${i}`, { id: 'two-calls', target: `${target.url}/c${i}`, sleepSeconds: 3 }));
      if (i < RUNS.gated) jobs.push(() => start(`g${i}`, { id: 'gated', target: `${target.url}/g${i}` }));
      if (i < RUNS.fanOut) jobs.push(() => start(`f${i}`, { id: 'orchestrator', target: `${target.url}/f${i}`, items: ['x', 'y', 'z'] }));
    }
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => { while (next < jobs.length) await jobs[next++](); }));
    expect(started).toHaveLength(1_000);

    await eventually(async () => {
      const { rows } = await db.query(`select count(*)::int as n from runs where status not in ('completed','partial','failed','cancelled','timed_out')`);
      return rows[0].n === 0 ? true : undefined;
    }, 200_000, 'every run ended').catch(async (err) => {
      const { rows } = await db.query(`select task_type, status, count(*)::int as n from runs group by 1, 2`);
      throw new Error(`${err.message}: ${JSON.stringify(rows)}`);
    });
    stop = true;
    await killer;
    await approver;
    expect(kills).toBeGreaterThanOrEqual(KILLS);

    // Every run ended completed: the 1,000 started and their 600 children; none lost, none extra.
    const { rows: ends } = await db.query(`select task_type, status, count(*)::int as n from runs group by 1, 2 order by 1, 2`);
    expect(ends).toEqual([
      { task_type: 'child-call', status: 'completed', n: RUNS.fanOut * 3 },
      { task_type: 'gated', status: 'completed', n: RUNS.gated },
      { task_type: 'orchestrator', status: 'completed', n: RUNS.fanOut },
      { task_type: 'two-calls', status: 'completed', n: RUNS.calls },
    ]);
    // No child created twice: three per orchestrator, one per item.
    const { rows: kids } = await db.query(`select count(distinct payload->>'name')::int as names, count(*)::int as n from runs where task_type = 'child-call' group by parent_run_id`);
    expect(kids.every((k) => k.n === 3 && k.names === 3)).toBe(true);
    // Each approval decided once.
    const { rows: appr } = await db.query(`select status, jsonb_array_length(decisions)::int as decisions, count(*)::int as n from approvals group by 1, 2`);
    expect(appr).toEqual([{ status: 'approved', decisions: 1, n: RUNS.gated }]);

    // No HTTP step called out after its completion was flushed (same clock: one machine).
    const { rows: steps } = await db.query(`select r.task_type, r.payload, s.step_ref, extract(epoch from s.finished_at) * 1000 as finished
      from step_runs s join runs r on r.id = s.run_id where s.kind = 'http.request' and s.status = 'completed'`);
    expect(steps).toHaveLength(RUNS.calls * 2 + RUNS.gated + RUNS.fanOut * 3);
    const pathOf = (s: { task_type: string; payload: Record<string, string>; step_ref: string }) => {
      const prefix = s.payload.target.slice(target.url.length);
      if (s.task_type === 'two-calls') return `${prefix}/${s.step_ref}`;
      if (s.task_type === 'gated') return `${prefix}/after`;
      return `${prefix}/child/${s.payload.name}`;
    };
    const late: string[] = [];
    for (const s of steps) {
      const calls = target.to(pathOf(s));
      expect({ path: pathOf(s), called: calls.length > 0 }).toEqual({ path: pathOf(s), called: true });
      // 50 ms of slack for the Recorder's clock read against PostgreSQL's commit time.
      if (calls.some((c) => c.at > Number(s.finished) + 50)) late.push(pathOf(s));
    }
    expect(late).toEqual([]);
  } finally {
    stop = true;
    await db.end();
  }
}, TIMEOUT);
