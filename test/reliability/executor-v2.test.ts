import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { freshDatabaseUrl } from '../support/database.js';
import { freePort } from '../support/ports.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually } from '../support/server.js';

// Engine v2 under fire: kill -9, two processes, a dead replica and a database restart, each with
// real server processes on FLOWGATE_ENGINE=v2 and a Recorder counting every HTTP call the runs make.
// At-least-once is the contract for one window only: a call that was under way when its process
// died and whose outcome was never flushed may be made once more; every flushed step runs once.
const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
const OWNER = 'owner@acme.io';
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  // `/slowN/first` and `/heldN/first` answer late: runs are inside an HTTP call when a process dies.
  target.respond((r) => (/^\/(slow|held)\d+\/first$/.test(r.path) ? { delayMs: 3000 } : undefined));
}, TIMEOUT);
afterAll(async () => {
  await killAllServerProcesses();
  await target.stop();
}, TIMEOUT);
afterEach(() => killAllServerProcesses(), TIMEOUT);

type Kind = 'sleep' | 'slow' | 'gated';
interface Started { id: string; prefix: string; kind: Kind }
const callsOf = (r: Started) => (r.kind === 'gated' ? ['after'] : ['first', 'second']);
const stepOfCall: Record<string, string> = { first: 'first', second: 'second', after: 'call' };

const v2 = (databaseUrl: string, id: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl, FLOWGATE_ENGINE: 'v2', FLOWGATE_EXECUTOR_ID: id, FLOWGATE_LEASE_MS: '3000', ...extra,
});

async function setUp(proc: ServerProcess): Promise<string> {
  expect((await proc.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: [OWNER] })).status).toBe(201);
  const r = await proc.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: OWNER });
  expect(r.status).toBe(201);
  return r.body.token as string;
}

async function startRun(proc: ServerProcess, kind: Kind, prefix: string, sleepSeconds = 4): Promise<Started> {
  const payload = kind === 'gated'
    ? { id: 'gated', repositoryIdentifier: 'acme/app', target: `${target.url}${prefix}` }
    : { id: 'two-calls', repositoryIdentifier: 'acme/app', target: `${target.url}${prefix}`, sleepSeconds: kind === 'sleep' ? sleepSeconds : 0.2 };
  const r = await proc.call('POST', `${FLOWS}/run`, { payload });
  expect(r.status).toBe(201);
  return { id: r.body.id, prefix, kind };
}

/** Every claim of a run (and every lease taken at intake), with the executor that made it: triggers on the real table, read by the test. */
async function watchClaims(db: pg.Client): Promise<void> {
  await db.query(`create table if not exists test_claims (run_id uuid, owner text, at timestamptz default clock_timestamp())`);
  await db.query(`create or replace function test_claim_seen() returns trigger language plpgsql as $$
    begin insert into test_claims (run_id, owner) values (new.id, new.lease_owner); return new; end $$`);
  // Every write of a run row (claims, flushes, heartbeats, signals): the executor's cost per run.
  await db.query(`create table if not exists test_run_writes (run_id uuid)`);
  await db.query(`create or replace function test_run_written() returns trigger language plpgsql as $$
    begin insert into test_run_writes values (new.id); return new; end $$`);
  await db.query(`drop trigger if exists test_run_written on runs`);
  await db.query(`create trigger test_run_written after update on runs for each row execute function test_run_written()`);
  await db.query(`drop trigger if exists test_claim_seen on runs`);
  await db.query(`create trigger test_claim_seen after update on runs for each row
    when (new.lease_token is not null and new.lease_token is distinct from old.lease_token) execute function test_claim_seen()`);
  // A run started on a process is written already leased to that process's executor.
  await db.query(`drop trigger if exists test_claim_seen_at_intake on runs`);
  await db.query(`create trigger test_claim_seen_at_intake after insert on runs for each row
    when (new.lease_token is not null) execute function test_claim_seen()`);
}

/** The HTTP steps whose completion is on record now, as `runId:ref`. */
async function flushedSteps(db: pg.Client): Promise<Set<string>> {
  const { rows } = await db.query(`select run_id, step_ref from step_runs where status = 'completed' and kind = 'http.request'`);
  return new Set(rows.map((r) => `${r.run_id}:${r.step_ref}`));
}

/**
 * The exactly-once check: a step flushed before the crash was called exactly once; a call that
 * had not reached the Recorder before the crash is made exactly once after it; a call that had
 * reached it but whose outcome was not flushed may be repeated once (the at-least-once window).
 */
function checkCalls(runs: Started[], flushed: Set<string>, before: Map<string, number>): { repeated: string[] } {
  const repeated: string[] = [];
  for (const r of runs) {
    for (const c of callsOf(r)) {
      const p = `${r.prefix}/${c}`;
      const now = target.to(p).length;
      const then = before.get(p) ?? 0;
      const label = { call: p, flushedBeforeCrash: flushed.has(`${r.id}:${stepOfCall[c]}`), callsBeforeCrash: then };
      if (label.flushedBeforeCrash) expect({ ...label, calls: now }).toEqual({ ...label, calls: 1 });
      else if (then === 0) expect({ ...label, calls: now }).toEqual({ ...label, calls: 1 });
      else {
        expect({ ...label, atMostTwice: now <= 2 }).toEqual({ ...label, atMostTwice: true });
        if (now === 2) repeated.push(p);
      }
    }
  }
  return { repeated };
}

const recorderCounts = () => {
  const m = new Map<string, number>();
  for (const r of target.requests) m.set(r.path, (m.get(r.path) ?? 0) + 1);
  return m;
};

async function allCompleted(db: pg.Client, ids: string[], timeoutMs: number, what: string): Promise<void> {
  await eventually(async () => {
    const { rows } = await db.query(`select count(*)::int as n from runs where id = any($1::uuid[]) and status = 'completed'`, [ids]);
    return rows[0].n === ids.length ? true : undefined;
  }, timeoutMs, what).catch(async (err) => {
    const { rows } = await db.query(`select status, error, count(*)::int as n from runs where id = any($1::uuid[]) group by 1, 2`, [ids]);
    throw new Error(`${err.message}; runs: ${JSON.stringify(rows)}`);
  });
}

/** Each gated run's one approval was decided once (one decision, approved). */
async function approvalsDecidedOnce(db: pg.Client, gated: Started[]): Promise<void> {
  const { rows } = await db.query(`select run_id, status, jsonb_array_length(decisions)::int as decisions from approvals where run_id = any($1::uuid[])`, [gated.map((g) => g.id)]);
  expect(rows).toHaveLength(gated.length);
  for (const a of rows) expect({ run: a.run_id, status: a.status, decisions: a.decisions }).toEqual({ run: a.run_id, status: 'approved', decisions: 1 });
}

test('kill -9 with 50 v2 runs in flight: every run completes after the restart, flushed steps never repeat, approvals decided once', async () => {
  const databaseUrl = await freshDatabaseUrl('v2_crash');
  // A lease far longer than the test: the restarted process must resume its own runs at once, not when their leases expire.
  const env = v2(databaseUrl, 'v2-crash', { FLOWGATE_LEASE_MS: '600000' });
  let proc = await startServerProcess(env);
  const owner = await setUp(proc);
  const runs: Started[] = [];
  // Slow runs last, so that they are still inside their 3 s call when the others have parked;
  // sleepers sleep long enough to be asleep at the kill on a busy machine.
  for (let i = 0; i < 15; i++) runs.push(await startRun(proc, 'gated', `/c-gated${i}`));
  for (let i = 0; i < 20; i++) runs.push(await startRun(proc, 'sleep', `/c-sleep${i}`, 8));
  for (let i = 0; i < 15; i++) runs.push(await startRun(proc, 'slow', `/slow${i}`));
  const gated = runs.filter((r) => r.kind === 'gated');
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    // In flight: every sleeper parked on its timer after its first call, slow runs inside their first call, gated runs suspended.
    await eventually(async () => {
      const { rows } = await db.query(`select
          count(*) filter (where r.status = 'suspended')::int as suspended,
          count(*) filter (where s.step_ref = 'pause' and s.status = 'waiting')::int as sleeping
        from runs r left join step_runs s on s.run_id = r.id`);
      const slowInFlight = runs.some((r) => r.kind === 'slow' && target.to(`${r.prefix}/first`).length === 1 && target.to(`${r.prefix}/second`).length === 0);
      return rows[0].suspended === 15 && rows[0].sleeping === 20 && slowInFlight ? true : undefined;
    }, 60_000, 'runs in flight');
    proc.kill('SIGKILL');
    await proc.exited;
    // The dead process writes nothing more: this is exactly what was flushed and called before the crash.
    const flushed = await flushedSteps(db);
    const before = recorderCounts();
    const { rows: pendingBefore } = await db.query(`select id from approvals where status = 'pending'`);
    expect(pendingBefore).toHaveLength(15);

    proc = await startServerProcess(env);
    for (const r of gated) {
      const a = await proc.call('POST', `${FLOWS}/approvals/${r.id}/approve`, { approver: 'Owner', approverEmail: OWNER }, owner);
      expect({ run: r.id, status: a.body.status }).toEqual({ run: r.id, status: 'approved' });
    }
    await allCompleted(db, runs.map((r) => r.id), 60_000, 'all 50 runs completed');
    const { repeated } = checkCalls(runs, flushed, before);
    // Only calls cut off by the kill can repeat: the sleepers' first calls were flushed, so they cannot.
    for (const p of repeated) expect(p).toMatch(/^\/slow\d+\/first$/);
    // The approvals opened before the crash are the ones decided after it, each once.
    const { rows: decided } = await db.query(`select id from approvals where status = 'approved'`);
    expect(decided.map((r) => r.id).sort()).toEqual(pendingBefore.map((r) => r.id).sort());
    await approvalsDecidedOnce(db, gated);
    console.info(`v2 crash: ${repeated.length} in-flight call(s) repeated after the restart: ${repeated.join(', ') || 'none'}`);
  } finally {
    await db.end();
  }
}, TIMEOUT);

test('two v2 processes on one database: every step once, both claim, a decision on the other process wakes the run', async () => {
  const databaseUrl = await freshDatabaseUrl('v2_two');
  const a = await startServerProcess(v2(databaseUrl, 'v2-a'));
  const b = await startServerProcess(v2(databaseUrl, 'v2-b'));
  const owner = await setUp(a);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await watchClaims(db);
    const dbName = new URL(databaseUrl).pathname.slice(1);
    const xacts = async () => Number((await db.query(`select xact_commit from pg_stat_database where datname = $1`, [dbName])).rows[0].xact_commit);
    const xactsBefore = await xacts();
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => startRun(i % 2 ? b : a, i % 4 === 0 ? 'gated' : 'sleep', `/t-${i}`)));
    // Sleepers here sleep 4 s: shorter runs would finish before the second process hears of them.
    const gated = runs.filter((r) => r.kind === 'gated');
    for (const r of gated) {
      await eventually(async () => ((await db.query(`select status from runs where id = $1`, [r.id])).rows[0].status === 'suspended' ? true : undefined), 30_000, `run ${r.id} suspended`);
      const { rows } = await db.query(`select owner from test_claims where run_id = $1 order by at`, [r.id]);
      expect(rows.length).toBeGreaterThan(0);
      const claimedBy = rows[rows.length - 1].owner as string;
      const other = claimedBy === 'v2-a' ? b : a;
      expect((await other.call('POST', `${FLOWS}/approvals/${r.id}/approve`, { approver: 'O', approverEmail: OWNER }, owner)).body.status).toBe('approved');
    }
    await allCompleted(db, runs.map((r) => r.id), 60_000, 'all 40 runs completed');
    for (const r of runs) for (const c of callsOf(r)) expect({ call: `${r.prefix}/${c}`, n: target.to(`${r.prefix}/${c}`).length }).toEqual({ call: `${r.prefix}/${c}`, n: 1 });
    const { rows: attempts } = await db.query(`select step_ref, max(attempt)::int as attempt from step_runs where run_id = any($1::uuid[]) and kind <> 'sleep' group by 1`, [runs.map((r) => r.id)]);
    for (const s of attempts) expect(s).toEqual({ step_ref: s.step_ref, attempt: 1 });
    const { rows: owners } = await db.query(`select distinct owner from test_claims order by owner`);
    expect(owners.map((o) => o.owner)).toEqual(['v2-a', 'v2-b']);
    await approvalsDecidedOnce(db, gated);
    const { rows: claims } = await db.query(`select count(*)::int as n from test_claims`);
    const perKind = async (kind: Kind) => {
      const ids = runs.filter((r) => r.kind === kind).map((r) => r.id);
      return (await db.query(`select count(*)::int as n from test_run_writes where run_id = any($1::uuid[])`, [ids])).rows[0].n / ids.length;
    };
    console.info(`v2 two processes: ${((await xacts()) - xactsBefore) / runs.length} committed transactions per run (API calls and test polling included); `
      + `${claims[0].n / runs.length} claims per run; run-row writes per run: two-calls ${await perKind('sleep')}, gated ${await perKind('gated')}`);
  } finally {
    await db.end();
  }
}, TIMEOUT);

test('kill -9 of one of two v2 processes: the survivor takes over its expired leases and finishes every run', async () => {
  const databaseUrl = await freshDatabaseUrl('v2_takeover');
  const a = await startServerProcess(v2(databaseUrl, 'v2-dies'));
  const b = await startServerProcess(v2(databaseUrl, 'v2-lives'));
  const owner = await setUp(b);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await watchClaims(db);
    const runs: Started[] = [];
    // Runs through both: slow calls keep their runs leased while the first process dies.
    for (let i = 0; i < 30; i++) runs.push(await startRun(i % 2 ? b : a, i % 3 === 0 ? 'gated' : i % 3 === 1 ? 'slow' : 'sleep', `/${i % 3 === 1 ? 'held' : 'k-'}${i}`));
    const gated = runs.filter((r) => r.kind === 'gated');
    // The victim holds at least one run inside a slow call.
    await eventually(async () => {
      const { rows } = await db.query(`select count(*)::int as n from runs where lease_owner = 'v2-dies'`);
      return rows[0].n > 0 ? true : undefined;
    }, 30_000, 'the first process holding runs');
    a.kill('SIGKILL');
    await a.exited;
    const flushed = await flushedSteps(db);
    const before = recorderCounts();
    const { rows: orphaned } = await db.query(`select id from runs where lease_owner = 'v2-dies'`);
    expect(orphaned.length).toBeGreaterThan(0);

    for (const r of gated) {
      await eventually(async () => ((await db.query(`select status from runs where id = $1`, [r.id])).rows[0].status === 'suspended' ? true : undefined), 30_000, `run ${r.id} suspended`);
      expect((await b.call('POST', `${FLOWS}/approvals/${r.id}/approve`, { approver: 'O', approverEmail: OWNER }, owner)).body.status).toBe('approved');
    }
    await allCompleted(db, runs.map((r) => r.id), 60_000, 'all 30 runs completed on the survivor');
    checkCalls(runs, flushed, before);
    // Every run the dead process held was taken over by the survivor.
    const { rows: takenOver } = await db.query(`select distinct run_id from test_claims where owner = 'v2-lives' and run_id = any($1::uuid[])`, [orphaned.map((o) => o.id)]);
    expect(takenOver).toHaveLength(orphaned.length);
    await approvalsDecidedOnce(db, gated);
  } finally {
    await db.end();
  }
}, TIMEOUT);

test('database restart mid-load on v2 (calls around sleeps, approvals, fan-outs): every acknowledged run completes, no flushed step calls again, approvals decided once', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-v2-outage-'));
  fs.chmodSync(dataDir, 0o755);
  const pgPort = await freePort();
  const embedded = new EmbeddedPostgres(dataDir, pgPort);
  let proc: ServerProcess | undefined;
  try {
    // A lease far longer than the test: a run whose write failed in the outage must not wait for its lease to expire.
    proc = await startServerProcess({ FLOWGATE_ENGINE: 'v2', FLOWGATE_LEASE_MS: '600000', FLOWGATE_DATA_DIR: dataDir, FLOWGATE_EMBEDDED_PG_PORT: String(pgPort) });
    const server = proc;
    const owner = await setUp(server);
    const accepted: (Started & { flow: string })[] = [];
    let stop = false;
    let n = 0;
    // The mix: calls around a sleep, approvals, fan-outs of two child runs.
    const payloadOf = (i: number, prefix: string) => [
      { id: 'two-calls', target: `${target.url}${prefix}`, sleepSeconds: 0.5 },
      { id: 'gated', target: `${target.url}${prefix}` },
      { id: 'orchestrator', target: `${target.url}${prefix}`, items: ['x', 'y'] },
    ][i % 3];
    const client = async () => {
      while (!stop) {
        const i = n++;
        const prefix = `/o-${i}`;
        const payload = payloadOf(i, prefix);
        const r = await server.call('POST', `${FLOWS}/run`, { payload: { repositoryIdentifier: 'acme/app', ...payload } }).catch(() => undefined);
        if (r?.status === 201) accepted.push({ id: r.body.id, prefix, kind: payload.id === 'gated' ? 'gated' : 'sleep', flow: payload.id });
        else if (r) expect({ status: r.status, message: /unavailable/i.test(r.body?.message ?? '') }).toEqual({ status: 503, message: true });
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    // Approves what waits, through the API (refusals and outages are retried on the next round).
    let approving = true;
    const approver = (async () => {
      while (approving) {
        const pending = await server.call('GET', `${FLOWS}/approvals/pending`, undefined, owner).catch(() => undefined);
        for (const a of (pending?.body?.approvals ?? []) as { id: string }[]) {
          await server.call('POST', `${FLOWS}/approvals/${a.id}/approve`, { approver: 'O', approverEmail: OWNER }, owner).catch(() => undefined);
        }
        await new Promise((res) => setTimeout(res, 300));
      }
    })();
    const clients = Array.from({ length: 4 }, client);
    await eventually(async () => (accepted.length >= 20 ? true : undefined), 30_000, 'load before the outage');
    // Adopts the running server: only its URL is wanted here.
    const dbUrl = await embedded.start();
    const listening = async () => {
      const probe = new pg.Client({ connectionString: dbUrl });
      await probe.connect();
      try {
        return (await probe.query(`select count(*)::int as n from pg_stat_activity where query like 'listen flowgate_wake%'`)).rows[0].n as number;
      } finally {
        await probe.end();
      }
    };
    expect(await listening()).toBe(1);
    await embedded.stop();
    await eventually(async () => ((await server.call('GET', '/readyz', undefined, null)).status === 503 ? true : undefined), 15_000, 'not ready during the outage');
    const duringOutage = accepted.length;
    await embedded.start();
    await eventually(async () => ((await server.call('GET', '/readyz', undefined, null)).status === 200 ? true : undefined), 60_000, 'ready again');
    await eventually(async () => (accepted.length >= duringOutage + 20 ? true : undefined), 30_000, 'load after the outage');
    stop = true;
    await Promise.all(clients);
    expect(server.running()).toBe(true);

    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      try {
        await allCompleted(db, accepted.map((r) => r.id), 90_000, `all ${accepted.length} acknowledged runs completed`);
      } finally {
        approving = false;
        await approver;
      }
      expect(new Set(accepted.map((r) => r.flow))).toEqual(new Set(['two-calls', 'gated', 'orchestrator']));
      // Every child of every fan-out completed, each created once.
      const fanOuts = accepted.filter((r) => r.flow === 'orchestrator').map((r) => r.id);
      const { rows: kids } = await db.query(`select parent_run_id, count(*)::int as n, count(*) filter (where status = 'completed')::int as ok
        from runs where parent_run_id = any($1::uuid[]) group by 1`, [fanOuts]);
      expect(kids).toHaveLength(fanOuts.length);
      expect(kids.every((k) => k.n === 2 && k.ok === 2)).toBe(true);
      // Each approval decided once.
      const gated = accepted.filter((r) => r.flow === 'gated');
      await approvalsDecidedOnce(db, gated);
      // Each call made; a call cut off by the outage may have been repeated, never more than once;
      // none after its step's completion was flushed.
      const { rows: steps } = await db.query(`select r.payload, r.task_type, s.step_ref, extract(epoch from s.finished_at) * 1000 as finished
        from step_runs s join runs r on r.id = s.run_id where s.kind = 'http.request' and s.status = 'completed' and (r.id = any($1::uuid[]) or r.parent_run_id = any($1::uuid[]))`,
        [accepted.map((r) => r.id)]);
      const repeated: string[] = [];
      for (const st of steps) {
        const prefix = (st.payload.target as string).slice(target.url.length);
        const p = st.task_type === 'two-calls' ? `${prefix}/${st.step_ref}` : st.task_type === 'gated' ? `${prefix}/after` : `${prefix}/child/${st.payload.name}`;
        const calls = target.to(p);
        expect({ call: p, made: calls.length >= 1 && calls.length <= 2, afterFlush: calls.some((c) => c.at > Number(st.finished) + 50) }).toEqual({ call: p, made: true, afterFlush: false });
        if (calls.length === 2) repeated.push(p);
      }
      console.info(`v2 database restart: ${accepted.length} runs acknowledged, ${repeated.length} call(s) repeated: ${repeated.join(', ') || 'none'}`);
      // The executor listens again after the restart (a lost LISTEN would leave it polling).
      await eventually(async () => ((await listening()) === 1 ? true : undefined), 15_000, 'LISTEN restored');
    } finally {
      await db.end();
    }
  } finally {
    if (proc?.running()) await proc.stop(10_000);
    await killAllServerProcesses();
    await embedded.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 180_000);
