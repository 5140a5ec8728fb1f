// Flowgate benchmarks: the real server process on an embedded PostgreSQL, each figure next to a
// reference measured in the same run on the same machine. Prints a markdown table and writes
// bench/results.json. Usage: npm run bench [-- --quick] [-- --listing | --doors | --intake | --approvals | --shapes | --webhooks | --auth | --console] [-- --split] [-- --engine dbos|v2] [-- --profile]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedPostgres } from '../dist/db/embedded-postgres.js';
import { consolePages, consoleRows } from './console.mjs';
import { githubIntake, registerDoorProjects, slackApprovals, startDoorFakes } from './doors.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const ONLY_LISTING = process.argv.includes('--listing');
const ONLY_DOORS = process.argv.includes('--doors');
// --engine v2|dbos (or FLOWGATE_ENGINE): the engine flow runs go to; v2, the server's default,
// unless named. On v2 the executor alone is measured as well.
const ENGINE = process.argv.includes('--engine') ? process.argv[process.argv.indexOf('--engine') + 1] : (process.env.FLOWGATE_ENGINE ?? 'v2');
if (!['dbos', 'v2'].includes(ENGINE)) throw new Error(`--engine: expected dbos or v2, got ${ENGINE}`);
const ONLY_INTAKE = process.argv.includes('--intake');
const ONLY_APPROVALS = process.argv.includes('--approvals');
const ONLY_SHAPES = process.argv.includes('--shapes');
const ONLY_WEBHOOKS = process.argv.includes('--webhooks');
const ONLY_AUTH = process.argv.includes('--auth');
const ONLY_CONSOLE = process.argv.includes('--console');
// --split: the HTTP server runs no executor (FLOWGATE_EXECUTOR=off); a second process executes.
const SPLIT = process.argv.includes('--split');
// The console pages: this many approvals pending in the inbox; each page fetched this many times.
const CONSOLE = { pending: 10_000, samples: QUICK ? 20 : 60 };
// --profile: each server process writes a V8 CPU profile here when it stops (open in Chrome DevTools).
const PROFILE_DIR = process.argv.includes('--profile') ? path.join(os.tmpdir(), 'flowgate-bench-profiles') : null;
const INTAKE_SECONDS = QUICK ? 5 : 20;
// The intake's warm-up: the same load, not measured (its own figures are printed apart).
const WARMUP_SECONDS = 2;
const CONCURRENCY = 32;
const SEED_ROWS = QUICK ? 100_000 : 1_000_000;
// Approve → finished: this many runs of `gated-log` waiting at their approval, decided at this rate.
const APPROVALS = 100;
const APPROVALS_PER_S = Number(process.env.BENCH_APPROVALS_PER_S ?? 50);
const TOKEN = 'bench-admin-token-0123456789';
const H = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
// Accounts are on in every bench server (the login measurement needs them).
const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef-0123456789';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN; };
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
}

// Servers still running: stopped when the benchmark ends, however it ends.
const live = new Set();

async function startServer(dataDir, pgPort, extraEnv = {}) {
  const port = await freePort();
  const t0 = Date.now();
  const child = spawn(process.execPath, [...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), 'dist/main.js'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', FLOWGATE_DATA_DIR: dataDir, FLOWGATE_EMBEDDED_PG_PORT: String(pgPort), FLOWGATE_ADMIN_TOKEN: TOKEN, FLOWGATE_MANIFESTS_DIR: path.join(ROOT, 'test/fixtures/flows'), LOG_LEVEL: 'warn', FLOWGATE_EXECUTOR_ID: 'bench', FLOWGATE_OUTBOUND_ALLOW: '127.0.0.0/8', FLOWGATE_ENGINE: ENGINE, FLOWGATE_JWT_SECRET: JWT_SECRET, ...extraEnv },
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    try { if ((await fetch(`${url}/readyz`)).ok) break; } catch { /* not yet */ }
    if (child.exitCode !== null) throw new Error('server exited during start-up');
    await sleep(25);
  }
  return { child, url, readyMs: Date.now() - t0 };
}
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}
const stopServer = async (s) => { if (s.worker) await stopChild(s.worker.child); await stopChild(s.child); };
/** CPU seconds (user + system) a process has used, from /proc; clock ticks are 100 per second on Linux. */
const cpuSeconds = (pid) => { try { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; } catch { return 0; } };
/** CPU seconds this benchmark process has used (its load generators and the fakes it serves). */
const cpuSecondsOfThisProcess = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const parentPid = (pid) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
/**
 * CPU seconds of one PostgreSQL server: its postmaster (the parent of `backendPid`) and every
 * process it started (backends, WAL writer, checkpointer, autovacuum), by kind. Other servers on
 * the machine (a test suite's) are not counted.
 */
const postgresCpuSeconds = (backendPid) => {
  const postmaster = parentPid(backendPid);
  const byKind = {};
  let total = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (Number(pid) !== postmaster && parentPid(pid) !== postmaster) continue;
      const seconds = cpuSeconds(pid);
      const kind = Number(pid) === postmaster ? 'postmaster' : fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').replace(/^postgres: /, '').split(' ')[0].trim() || 'backend';
      byKind[kind] = (byKind[kind] ?? 0) + seconds;
      total += seconds;
    } catch { /* ended meanwhile */ }
  }
  return { total, byKind };
};
const rssMb = (pid) => { const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? Number(m[1]) / 1024 : NaN; };
// node:http with kept-alive connections: fetch costs the load generator about three times the CPU
// per request, and the load generator shares the machine's cores with the server and PostgreSQL.
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });
function call(url, method, p, body, headers = H) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url + p, { method, agent, headers: data === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, ok: res.statusCode >= 200 && res.statusCode < 300, text: async () => text, json: async () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * Loads pg_stat_statements into the embedded server before Flowgate starts it, so the intake can
 * count the statements each run costs (in every database: Flowgate's and the engine's).
 */
async function preloadStatementStats(dataDir, pgPort) {
  const pre = new EmbeddedPostgres(dataDir, pgPort);
  const url = new URL(await pre.start());
  url.pathname = '/postgres';
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  await c.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
  // Top level only: round trips from clients, not the foreign-key checks run inside them.
  await c.query(`alter system set pg_stat_statements.track = 'top'`);
  await c.end();
  await pre.stop();
}

async function statementCalls(client) {
  const { rows } = await client.query('select coalesce(sum(calls), 0)::bigint as n from pg_stat_statements');
  return Number(rows[0].n);
}

/** Transactions committed or rolled back in every database of the server (Flowgate's and the engine's). */
async function statementCount(client) {
  // Backends report their counters when idle for a moment: wait for them, then read afresh.
  await sleep(1_500);
  await client.query('select pg_stat_clear_snapshot()');
  const { rows } = await client.query('select sum(xact_commit + xact_rollback)::bigint as n from pg_stat_database');
  return Number(rows[0].n);
}

/** 32 clients starting one-step runs back to back for `seconds`: each start's latency, and the ids accepted. */
async function startLoad(url, seconds) {
  const lat = [];
  const ids = [];
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < until) {
      const t = performance.now();
      const r = await call(url, 'POST', '/sfp/api/flows/run', { payload: { id: 'notifier', repositoryIdentifier: 'bench/app', text: 'x' } });
      const b = await r.json();
      lat.push(performance.now() - t);
      if (r.status === 201) ids.push(b.id); else errors++;
    }
  }));
  return { lat, ids, errors };
}

/** Polls until no run is unfinished (at most 5 minutes); the seconds it took. */
async function drainRuns(client) {
  const t0 = Date.now();
  for (;;) {
    const { rows } = await client.query(`select count(*)::int as n from runs where status not in ('completed','partial','failed','cancelled','timed_out')`);
    if (rows[0].n === 0 || Date.now() - t0 > 300_000) break;
    await sleep(200);
  }
  return (Date.now() - t0) / 1000;
}

/** The server's own histogram of the start route (`flowgate_http_request_duration_seconds`): count per bucket bound in seconds. */
async function handlerBuckets(url) {
  const text = await (await fetch(`${url}/metrics`, { headers: H })).text();
  const buckets = new Map();
  for (const line of text.split('\n')) {
    const m = /^flowgate_http_request_duration_seconds_bucket\{le="([^"]+)",method="POST",route="\/sfp\/api\/flows\/run",status="201"\} (\d+)/.exec(line);
    if (m) buckets.set(m[1], Number(m[2]));
  }
  return buckets;
}

const completedRuns = async (client) => (await client.query(`select count(*)::int as n from runs where status = 'completed'`)).rows[0].n;

async function intake(server) {
  // The same load for WARMUP_SECONDS first, not counted: a process's first second is its JIT
  // compiling the hot paths and a fresh database's plans and statistics settling (reported apart).
  // The memory peak is taken over both.
  let peakRss = 0;
  let peakWorkerRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMb(server.child.pid));
    if (server.worker) peakWorkerRss = Math.max(peakWorkerRss, rssMb(server.worker.child.pid));
  }, 250);
  const warm = await startLoad(server.url, WARMUP_SECONDS);
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  await drainRuns(client);
  const completedBefore = await completedRuns(client);
  const stats = new pg.Client({ connectionString: server.dbUrl });
  await stats.connect();
  const before = await statementCount(stats);
  const counting = ONLY_INTAKE && (await stats.query('create extension if not exists pg_stat_statements').then(() => true, () => false));
  if (counting) await stats.query('select pg_stat_statements_reset()');
  // Where the machine's cores go during the intake: the server, PostgreSQL, and this load generator.
  const { rows: [{ pid: statsPid }] } = await stats.query('select pg_backend_pid() as pid');
  const pg0 = postgresCpuSeconds(statsPid);
  const cpu0 = { server: cpuSeconds(server.child.pid), worker: server.worker ? cpuSeconds(server.worker.child.pid) : 0, postgres: pg0.total, load: process.cpuUsage() };
  const handled0 = await handlerBuckets(server.url);
  const { lat, ids, errors } = await startLoad(server.url, INTAKE_SECONDS);
  const accepted = ids.length / INTAKE_SECONDS;
  const handled1 = await handlerBuckets(server.url);
  // The share of the measured starts the server's handler finished within 25 and 50 ms (from the first middleware to the answer).
  const within = (le) => (handled1.get(le) - (handled0.get(le) ?? 0)) / (handled1.get('+Inf') - (handled0.get('+Inf') ?? 0));
  const loadCpu = process.cpuUsage(cpu0.load);
  const pg1 = postgresCpuSeconds(statsPid);
  const cpu = { server: cpuSeconds(server.child.pid) - cpu0.server, worker: server.worker ? cpuSeconds(server.worker.child.pid) - cpu0.worker : 0, postgres: pg1.total - cpu0.postgres, load: (loadCpu.user + loadCpu.system) / 1e6,
    postgresByKind: Object.fromEntries(Object.entries(pg1.byKind).map(([k, v]) => [k, v - (pg0.byKind[k] ?? 0)]).filter(([, v]) => v > 0)) };
  // Completion: how long until every accepted run has finished.
  const drainS = await drainRuns(client);
  const completed = (await completedRuns(client)) - completedBefore;
  const polls = Math.ceil((drainS * 1000) / 200) + 2;
  await client.end();
  clearInterval(sampler);
  // Autocommit statements are one transaction each, so transactions ≈ statements; the drain's own polls are taken out.
  const transactions = (await statementCount(stats)) - before - polls - 2;
  // Every statement any client sent, BEGIN and COMMIT included, less the drain's polls and this read.
  const statements = counting ? (await statementCalls(stats)) - polls - 1 : NaN;
  // The v2 executor's own statements: claim, flush, lease heartbeat.
  const executorCalls = counting ? Number((await stats.query(`select coalesce(sum(calls), 0)::bigint as n from pg_stat_statements
    where query like 'with picked as%' or query like 'with input as%' or query like 'update runs r set wake_at%'`)).rows[0].n) : NaN;
  if (counting && process.argv.includes('--statements')) {
    const { rows: top } = await stats.query('select calls, round(total_exec_time) as ms, left(regexp_replace(query, \'\\s+\', \' \', \'g\'), 100) as q from pg_stat_statements order by total_exec_time desc limit 15');
    for (const t of top) console.log(`${String(t.calls).padStart(7)} ${String(t.ms).padStart(7)} ms  ${t.q}`);
  }
  await stats.end();
  return { accepted, p50: pct(lat, 50), p99: pct(lat, 99), errors, completed, completedPerS: completed / (INTAKE_SECONDS + drainS), drainS,
    cpu, transactionsPerRun: transactions / completed, statementsPerRun: statements / completed, executorPerRun: executorCalls / completed, peakRss, peakWorkerRss,
    warm: { perS: warm.ids.length / WARMUP_SECONDS, p50: pct(warm.lat, 50), p99: pct(warm.lat, 99) },
    handledWithin25: within('0.025'), handledWithin50: within('0.05') };
}

/**
 * The v2 executor on its own, without HTTP: runs committed beforehand (copies of a finished
 * notifier run) are made claimable at once; measures how fast they complete and the executor's
 * statements per run at that batch size.
 */
async function executorDrain(server, n) {
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  const { rows: [template] } = await client.query(`select id from runs where task_type = 'notifier' and status = 'completed' limit 1`);
  await client.query(`insert into runs (id, engine_run_id, task_type, flow_path, category, execution_mode, repository_identifier, status, payload, result, definition,
      triggered_by, engine, log_seq, created_at, updated_at, engine_version)
    select x.id, 'run-' || x.id, task_type, flow_path, category, execution_mode, repository_identifier, 'queued', payload, '{}', definition,
      'drain', engine, 0, now(), now(), 'v2'
    from runs, lateral (select gen_random_uuid() as id from generate_series(1, $2)) x where runs.id = $1`, [template.id, n]);
  // Statements are counted when pg_stat_statements is loaded (--intake).
  const counting = await client.query('select pg_stat_statements_reset()').then(() => true, () => false);
  const t0 = performance.now();
  await client.query(`update runs set wake_at = now() where triggered_by = 'drain'`);
  await client.query(`select pg_notify('flowgate_wake', '')`);
  let polls = 0;
  for (;;) {
    polls++;
    const { rows } = await client.query(`select count(*)::int as n from runs where triggered_by = 'drain' and status not in ('completed','partial','failed','cancelled','timed_out')`);
    if (rows[0].n === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  const { rows: [done] } = await client.query(`select count(*)::int as n from runs where triggered_by = 'drain' and status = 'completed'`);
  const { rows: [calls] } = counting ? await client.query(`select coalesce(sum(calls) filter (where query like 'with picked as%'), 0)::int as claims,
      coalesce(sum(calls) filter (where query like 'with input as%'), 0)::int as flushes from pg_stat_statements`) : { rows: [{ claims: NaN, flushes: NaN }] };
  await client.end();
  return { n, completed: done.n, perS: done.n / seconds, claims: calls.claims, flushes: calls.flushes, perRun: (calls.claims + calls.flushes) / done.n, polls };
}

async function insertReference(dbUrl) {
  const pool = new pg.Pool({ connectionString: dbUrl, max: CONCURRENCY });
  await pool.query('create table if not exists bench_ref (id bigserial primary key, payload jsonb, at timestamptz default now())');
  let n = 0;
  const until = Date.now() + INTAKE_SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < until) { await pool.query('insert into bench_ref (payload) values ($1)', [{ id: 'notifier', text: 'x' }]); n++; }
  }));
  await pool.query('drop table bench_ref');
  await pool.end();
  return n / INTAKE_SECONDS;
}

/**
 * `APPROVALS` runs of `gated-log` (an approval, then a log line) wait at their approval; they are
 * approved over REST at `APPROVALS_PER_S`, each request sent on time whatever the earlier ones
 * do. Approve → finished is the run's `finished_at` (written by its end's commit) minus the
 * moment its approve request was sent: nothing polls the database while it is measured.
 */
async function approvals(server) {
  const r = await call(server.url, 'POST', '/api/v1/tokens', { name: 'approver', role: 'owner', email: 'owner@bench.io' });
  const approver = { ...H, authorization: `Bearer ${(await r.json()).token}` };
  const runs = [];
  for (let i = 0; i < APPROVALS; i++) {
    const s = await call(server.url, 'POST', '/sfp/api/flows/run', { payload: { id: 'gated-log', repositoryIdentifier: 'bench/app' } });
    runs.push((await s.json()).id);
  }
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  let appr = [];
  for (let i = 0; ; i++) {
    ({ rows: appr } = await client.query(`select a.id, a.run_id from approvals a where a.status = 'pending' and a.run_id = any($1::uuid[])`, [runs]));
    if (appr.length >= APPROVALS) break;
    if (i > 600) throw new Error(`only ${appr.length} of ${APPROVALS} approvals opened`);
    await sleep(100);
  }
  const sentAt = new Map();
  const ack = [];
  const t0 = Date.now();
  await Promise.all(appr.map(async (a, i) => {
    await sleep(Math.max(0, t0 + (i * 1000) / APPROVALS_PER_S - Date.now()));
    const sent = performance.now();
    sentAt.set(a.run_id, Date.now());
    const res = await call(server.url, 'POST', `/sfp/api/flows/approvals/${a.id}/approve`, { approver: 'o', approverEmail: 'owner@bench.io' }, approver);
    await res.text();
    if (!res.ok) throw new Error(`approve ${a.id}: HTTP ${res.status}`);
    ack.push(performance.now() - sent);
  }));
  let ended = [];
  for (let i = 0; ; i++) {
    ({ rows: ended } = await client.query(`select id, status, extract(epoch from finished_at) * 1000 as at from runs where id = any($1::uuid[]) and finished_at is not null`, [runs]));
    if (ended.length >= APPROVALS) break;
    if (i > 600) throw new Error(`only ${ended.length} of ${APPROVALS} approved runs finished`);
    await sleep(100);
  }
  await client.end();
  const done = ended.map((e) => Number(e.at) - sentAt.get(e.id));
  const completed = ended.filter((e) => e.status === 'completed').length;
  return { n: APPROVALS, perS: APPROVALS_PER_S, completed, ackP50: pct(ack, 50), ackP99: pct(ack, 99), doneP50: pct(done, 50), doneP95: pct(done, 95), doneP99: pct(done, 99) };
}

/**
 * Longer flows: `runs` runs of a flow type started over REST by 16 clients at once, timed until
 * the last one completes; statements counted by pg_stat_statements over the same window.
 */
async function shape(server, flowType, runs, stepsPerRun) {
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  await client.query('create extension if not exists pg_stat_statements');
  await client.query('select pg_stat_statements_reset()');
  const t0 = performance.now();
  const ids = [];
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next++ < runs) {
      const r = await call(server.url, 'POST', '/sfp/api/flows/run', { payload: { id: flowType, repositoryIdentifier: 'bench/app' } });
      if (r.status !== 201) throw new Error(`start ${flowType}: HTTP ${r.status} ${await r.text()}`);
      ids.push((await r.json()).id);
    }
  }));
  let polls = 0;
  for (;;) {
    polls++;
    const { rows } = await client.query(`select count(*)::int as n from runs where id = any($1::uuid[]) and finished_at is null`, [ids]);
    if (rows[0].n === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  const { rows: [done] } = await client.query(`select count(*) filter (where status = 'completed')::int as ok,
      (select count(*)::int from step_runs where run_id = any($1::uuid[]) and status = 'completed') as steps from runs where id = any($1::uuid[])`, [ids]);
  const statements = (await statementCalls(client)) - polls - 2;
  await client.end();
  return { flowType, runs, completed: done.ok, steps: done.steps, runsPerS: done.ok / seconds, stepsPerS: done.steps / seconds, perStep: statements / done.steps, perRun: statements / done.ok, stepsPerRun };
}

function shapeRows(shapes) {
  return shapes.map((x) => [`${x.flowType}: ${x.runs} runs of ${x.stepsPerRun} steps, 16 clients`, `${round(x.runsPerS)} runs/s · ${round(x.stepsPerS)} steps/s completed (${x.completed} of ${x.runs})`, '', '', `${round(x.perStep, 2)} statements per step (${round(x.perRun, 1)} per run, intake included)`]);
}

/** The table rows of `approvals`. */
function approvalRows(appr) {
  return [
    [`Approve → HTTP answer (${appr.n} runs at ${appr.perS}/s, REST)`, `p50 ${round(appr.ackP50)} ms · p99 ${round(appr.ackP99)} ms`, '', '', ''],
    [`Approve → run finished (${appr.completed} of ${appr.n} completed)`, `p50 ${round(appr.doneP50)} · p95 ${round(appr.doneP95)} · p99 ${round(appr.doneP99)} ms`, '', '', 'p99 ≤ 100 ms'],
  ];
}

const LISTINGS = [
  ['repository only', ''],
  ['taskType', '&taskType=parallel'],
  ['category', '&category=testing'],
  ['triggeredBy', '&triggeredBy=user7@bench.io'],
  ['since 24h', '&since=24h'],
  ['workItemKey', '&workItemKey=42'],
  ['page 5', '&page=5&limit=50'],
];

async function listing(server) {
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  await client.query(`insert into runs (id, engine_run_id, task_type, flow_path, category, execution_mode, repository_identifier, status, payload, definition, triggered_by, work_item_ref, created_at)
    select gen_random_uuid(), 'seed-' || g, (array['parallel','two-calls','gated','waiter'])[1 + g % 4], 'flows/' || (g % 4), (array['testing','access','release'])[1 + g % 3], 'flow',
      (array['bench/app','bench/other','bench/third'])[1 + g % 3], 'completed', '{}', '{}', 'user' || (g % 50) || '@bench.io',
      case when g % 1000 = 0 then jsonb_build_object('type','github-pr','key', (g % 97)::text) end,
      now() - (g || ' seconds')::interval
    from generate_series(1, ${SEED_ROWS}) g`);
  // A table loaded in bulk, as autovacuum would leave it: statistics and visibility map current.
  await client.query('vacuum analyze runs');
  const out = [];
  for (const [name, q] of LISTINGS) {
    const lat = [];
    for (let i = 0; i < (QUICK ? 20 : 60); i++) {
      const t = performance.now();
      const r = await call(server.url, 'GET', `/sfp/api/flows/runs?repositoryIdentifier=bench/app${q}`);
      await r.text();
      lat.push(performance.now() - t);
    }
    out.push({ name, p50: pct(lat, 50), p95: pct(lat, 95) });
  }
  // The plan PostgreSQL picks for the heaviest filters.
  const { rows } = await client.query(`explain select * from runs where repository_identifier = 'bench/app' and task_type = 'parallel' and schedule_path is null order by created_at desc, id desc limit 50`);
  const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
  await client.end();
  return { out, plan, seqScan: /Seq Scan on runs/.test(plan) };
}

/** Both doors on, against the fakes: a server of its own, started with their settings. */
async function doors(dataDir, pgPort) {
  const fakes = await startDoorFakes();
  try {
    const server = await startServer(dataDir, pgPort, { ...fakes.env, ...(SPLIT ? { FLOWGATE_EXECUTOR: 'off' } : {}) });
    if (SPLIT) server.worker = await startServer(dataDir, pgPort, { ...fakes.env, FLOWGATE_EXECUTOR_ID: 'bench-worker' });
    try {
      server.dbUrl = await new EmbeddedPostgres(dataDir, pgPort).start();
      await registerDoorProjects(server.url, H);
      // In this order: the approvals are timed on a server not yet busy with the intake's runs.
      return {
        slackApprovals: await slackApprovals(server, fakes, {
          runs: APPROVALS, concurrency: 20,
          cpu: async (client) => ({ server: cpuSeconds(server.child.pid) + (server.worker ? cpuSeconds(server.worker.child.pid) : 0), postgres: postgresCpuSeconds((await client.query('select pg_backend_pid() as pid')).rows[0].pid).total, bench: cpuSecondsOfThisProcess() }),
        }),
        githubIntake: await githubIntake(server, fakes, { seconds: INTAKE_SECONDS, clients: CONCURRENCY }),
      };
    } finally {
      await stopServer(server);
    }
  } finally {
    await fakes.stop();
  }
}

function doorRows({ slackApprovals: s, githubIntake: g }) {
  const spread = (x) => `p50 ${round(x.p50)} · p95 ${round(x.p95)} · p99 ${round(x.p99)} ms`;
  return [
    [`Slack Approve click → HTTP ack (${round(s.clickedPerS)} clicks/s, flow ${s.flow})`, spread(s.ack), '', '', ''],
    ['Slack Approve click → approval decided', spread(s.decided), '', '', ''],
    ['Slack Approve click → chat.update at Slack', `${spread(s.updated)}${s.notUpdated ? ` (${s.notUpdated} never updated)` : ''}`, '', '', ''],
    ['Slack Approve click → run completed', `${spread(s.finished)}${s.notCompleted ? ` (${s.notCompleted} of ${s.runs} not completed)` : ''}`, '', '', ''],
    ['… stages: sent → delivery recorded / → decided / → approval step done / → next step started', ['received', 'decided', 'stepDone', 'nextStarted'].map((k) => `p50 ${round(s.stages[k].p50)}`).join(' / ') + ' ms', '', '', ''],
    ...(s.cpuMsPerClick ? [['… CPU per click (until its messages were updated): server / PostgreSQL / this bench (clicks, Slack fake, target)', `${round(s.cpuMsPerClick.server)} / ${round(s.cpuMsPerClick.postgres)} / ${round(s.cpuMsPerClick.bench)} ms`, '', '', '']] : []),
    ['GitHub comment intake (32 clients)', `${round(g.perS)} deliveries/s acknowledged${g.errors ? ` (${g.errors} refused)` : ''}`, '', '', ''],
    ['GitHub delivery ack latency', `p50 ${round(g.p50)} ms · p99 ${round(g.p99)} ms`, '', '', ''],
    ['GitHub deliveries without exactly one run', `${g.mismatches} of ${g.acked} (${g.missing} missing, ${g.extra} extra; all recorded ${round(g.recordedS)} s after the intake)`, '', '', '0'],
    ['GitHub runs completed', `${g.completed} of ${g.acked}, ${round(g.doneS)} s after the intake${g.failedDeliveries ? ` (${g.failedDeliveries} deliveries failed)` : ''}`, '', '', ''],
  ];
}

function intakeRows(load, reference) {
  return [
    [`Run intake (32 clients, engine ${ENGINE})`, `${round(load.accepted)} runs/s accepted`, `${round(reference)} INSERT commits/s`, `${round(load.accepted / reference, 2)}×`, '≥ 1000 runs/s'],
    ['Run intake latency', `p50 ${round(load.p50)} ms · p99 ${round(load.p99)} ms`, '', '', 'p99 ≤ 50 ms'],
    ['… of it, in the server\'s own handler (its request histogram)', `${round(load.handledWithin25 * 100, 1)} % within 25 ms · ${round(load.handledWithin50 * 100, 1)} % within 50 ms`, '', '', ''],
    [`… the ${WARMUP_SECONDS} s warm-up before it (a process just started, an empty database; not counted above)`, `${round(load.warm.perS)} runs/s accepted · p50 ${round(load.warm.p50)} ms · p99 ${round(load.warm.p99)} ms`, '', '', ''],
    [`CPU per accepted run during the intake: server${SPLIT ? ' (HTTP) / executor process' : ''} / PostgreSQL / load generator`, [...(SPLIT ? ['server', 'worker'] : ['server']), 'postgres', 'load'].map((k) => `${round((load.cpu[k] * 1000) / (load.accepted * INTAKE_SECONDS), 2)} ms`).join(' / ')
      + ` (${round((load.cpu.server + load.cpu.worker + load.cpu.postgres + load.cpu.load) / INTAKE_SECONDS, 2)} of ${os.cpus().length} cores busy)`, '', '', ''],
    ['… PostgreSQL\'s by process', Object.entries(load.cpu.postgresByKind ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${round((v * 1000) / (load.accepted * INTAKE_SECONDS), 2)} ms`).join(' · '), '', '', ''],
    ['Runs completed', `${round(load.completedPerS)} runs/s (${load.completed} runs, all done ${round(load.drainS)} s after the intake)`, '', '', '≥ 1000 runs/s'],
    ...(ONLY_INTAKE ? [[`Server memory (RSS) peak under the intake${SPLIT ? ': HTTP process / executor process' : ''}`, `${round(load.peakRss)} MB${SPLIT ? ` / ${round(load.peakWorkerRss)} MB` : ''}`, '', '', '≤ 300 MB']] : []),
    // Statements are counted only with --intake (pg_stat_statements is loaded for that run alone).
    ...(Number.isFinite(load.statementsPerRun) ? [['Statements per completed run (pg_stat_statements calls, all databases, intake included)', `${round(load.statementsPerRun, 2)}`, '', '', '≤ 2–3']] : []),
    ...(Number.isFinite(load.executorPerRun) && ENGINE === 'v2' ? [['… of which the v2 executor (claim, flush, heartbeat)', `${round(load.executorPerRun, 2)}`, '', '', '']] : []),
    ['Transactions per completed run (pg_stat_database)', `${round(load.transactionsPerRun, 2)}`, '', '', ''],
  ];
}

/** The executor alone (v2): committed runs made claimable at once, drained. */
function drainRows(drain) {
  if (!drain) return [];
  return [
    [`Executor alone: ${drain.n} committed one-step runs made claimable at once`, `${round(drain.perS)} runs/s completed (${drain.completed} completed)`, '', '', '≥ 1000 runs/s'],
    ...(Number.isFinite(drain.perRun) ? [['Executor statements per run at that load', `${round(drain.perRun, 3)} (${drain.claims} claims, ${drain.flushes} flushes)`, '', '', '≤ 2']] : []),
  ];
}

const HEADER = '| measure | Flowgate | raw PostgreSQL reference | ratio | target |\n| --- | --- | --- | --- | --- |';

async function main() {
  execBuild();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-bench-'));
  fs.chmodSync(dataDir, 0o755);
  const pgPort = await freePort();
  try {
    await measure(dataDir, pgPort);
  } finally {
    await Promise.all([...live].map(stopChild));
    await new EmbeddedPostgres(dataDir, pgPort).stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Webhook-trigger intake: a flow document with one log task, a webhook trigger per client (each
 * trigger's limit is 600 a minute), 32 clients posting JSON bodies for the intake's duration.
 */
async function webhookIntake(server) {
  await call(server.url, 'PUT', '/api/v1/projects/bench/app', { provider: 'github', owners: ['owner@bench.io'], namespace: 'bench' });
  const flow = await (await call(server.url, 'POST', '/api/v1/flows', { yamlContent: 'name: hooked\nnamespace: bench\ninputs: { order: x }\ntasks:\n  - { name: say, type: util.log, properties: { message: "order {{ inputs.order }}" } }\n' })).json();
  const keys = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const t = await (await call(server.url, 'POST', '/api/v1/triggers', { flowId: flow.id, type: 'webhook', name: `bench-${i}`, rateLimitPerMinute: 600 })).json();
    keys.push(t.webhookKey);
  }
  const lat = [];
  let accepted = 0;
  let limited = 0;
  let errors = 0;
  const until = Date.now() + INTAKE_SECONDS * 1000;
  await Promise.all(keys.map(async (key, i) => {
    for (let n = 0; Date.now() < until; n++) {
      const t = performance.now();
      const r = await call(server.url, 'POST', `/api/v1/webhook/${key}`, { order: `${i}-${n}` }, { 'content-type': 'application/json' });
      await r.text();
      lat.push(performance.now() - t);
      if (r.status === 202) accepted++;
      else if (r.status === 429) limited++;
      else errors++;
    }
  }));
  return { perS: accepted / INTAKE_SECONDS, p50: pct(lat, 50), p99: pct(lat, 99), limited, errors };
}

const webhookRows = (w, reference) => [
  ['Webhook-trigger intake (32 clients, a trigger each)', `${round(w.perS)} executions/s accepted (p50 ${round(w.p50)} ms · p99 ${round(w.p99)} ms)${w.limited ? `; ${w.limited} over the limit (429)` : ''}${w.errors ? `; ${w.errors} refused` : ''}`,
    reference ? `${round(reference)} INSERT commits/s` : '', reference ? `${round(w.perS / reference, 3)}×` : '', ''],
];

/**
 * What an account costs: `POST /auth/login` (scrypt, a session row), then `GET /api/v1/flows` with
 * its JWT (signature, one session read) against the same request with a Flowgate token, interleaved.
 */
async function authCost(server) {
  const password = 'bench password 0123456789';
  const reg = await call(server.url, 'POST', '/auth/register', { username: 'bench.admin', password, role: 'admin' });
  if (reg.status !== 201) throw new Error(`registering the bench account: ${reg.status} ${await reg.text()}`);
  const logins = [];
  let jwt;
  for (let i = 0; i < (QUICK ? 20 : 50); i++) {
    const t = performance.now();
    const r = await call(server.url, 'POST', '/auth/login', { username: 'bench.admin', password }, { 'content-type': 'application/json' });
    logins.push(performance.now() - t);
    if (r.status !== 200) throw new Error(`login: ${r.status} ${await r.text()}`);
    jwt = (await r.json()).token;
  }
  const withJwt = [];
  const withToken = [];
  const headersJwt = { authorization: `Bearer ${jwt}` };
  for (let i = 0; i < (QUICK ? 300 : 2_000); i++) {
    for (const [lat, headers] of [[withJwt, headersJwt], [withToken, H]]) {
      const t = performance.now();
      const r = await call(server.url, 'GET', '/api/v1/flows', undefined, headers);
      await r.text();
      lat.push(performance.now() - t);
      if (r.status !== 200) throw new Error(`GET /api/v1/flows: ${r.status}`);
    }
  }
  const p = (xs) => ({ p50: pct(xs, 50), p99: pct(xs, 99) });
  return { login: p(logins), jwt: p(withJwt), token: p(withToken), n: withJwt.length };
}

const authRows = (a) => [
  [`Login (POST /auth/login, scrypt N=2^15, ${QUICK ? 20 : 50} sequential)`, `p50 ${round(a.login.p50)} ms · p99 ${round(a.login.p99)} ms`, '', '', ''],
  [`GET /api/v1/flows with a JWT (${a.n} sequential)`, `p50 ${round(a.jwt.p50, 2)} ms · p99 ${round(a.jwt.p99, 2)} ms`,
    `with a Flowgate token: p50 ${round(a.token.p50, 2)} ms · p99 ${round(a.token.p99, 2)} ms`, `${round(a.jwt.p50 / a.token.p50, 2)}×`, ''],
];

async function measure(dataDir, pgPort) {
  if (ONLY_DOORS) {
    const door = await doors(dataDir, pgPort);
    console.log(HEADER);
    for (const r of doorRows(door)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if ((ONLY_INTAKE && !ONLY_APPROVALS) || ONLY_SHAPES) await preloadStatementStats(dataDir, pgPort);
  let server = await startServer(dataDir, pgPort, SPLIT ? { FLOWGATE_EXECUTOR: 'off' } : {});
  const coldStartMs = server.readyMs;
  server.dbUrl = (await new EmbeddedPostgres(dataDir, pgPort).start());
  if (SPLIT) server.worker = await startServer(dataDir, pgPort, { FLOWGATE_EXECUTOR_ID: 'bench-worker' });
  const idleRss = rssMb(server.child.pid);
  await call(server.url, 'PUT', '/api/v1/projects/bench/app', { provider: 'github', owners: ['owner@bench.io'] });

  if (ONLY_AUTH) {
    const auth = await authCost(server);
    await stopServer(server);
    console.log(HEADER);
    for (const r of authRows(auth)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if (ONLY_CONSOLE) {
    const pages = await consolePages(server, H, CONSOLE);
    await stopServer(server);
    console.log(HEADER);
    for (const r of consoleRows(pages, round)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if (ONLY_SHAPES) {
    const shapes = [await shape(server, 'ten-steps', QUICK ? 300 : 1_000, 10), await shape(server, 'fan-out-50', QUICK ? 40 : 150, 52)];
    await stopServer(server);
    console.log(HEADER);
    for (const r of shapeRows(shapes)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if (ONLY_APPROVALS) {
    const appr = await approvals(server);
    await stopServer(server);
    console.log(HEADER);
    for (const r of approvalRows(appr)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if (ONLY_WEBHOOKS) {
    const reference = await insertReference(server.dbUrl);
    const hooks = await webhookIntake(server);
    await stopServer(server);
    console.log(HEADER);
    for (const r of webhookRows(hooks, reference)) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  if (ONLY_LISTING) {
    const list = await listing(server);
    for (const l of list.out) console.log(`| List runs: ${l.name} | p50 ${round(l.p50)} ms · p95 ${round(l.p95)} ms |`);
    console.log(list.plan);
    await stopServer(server);
    return;
  }
  const reference = await insertReference(server.dbUrl);
  const load = await intake(server);
  const drain = ENGINE === 'v2' ? await executorDrain(server, QUICK ? 5_000 : 20_000) : null;
  if (ONLY_INTAKE) {
    if (server.worker) await stopServer(server.worker);
    await stopServer(server);
    console.log(HEADER);
    for (const r of [...intakeRows(load, reference), ...drainRows(drain)]) console.log(`| ${r.join(' | ')} |`);
    return;
  }
  const appr = await approvals(server);
  const hooks = await webhookIntake(server);
  const list = await listing(server);
  const auth = await authCost(server);
  await stopServer(server);
  server = await startServer(dataDir, pgPort);
  const warmStartMs = server.readyMs;
  await stopServer(server);
  const door = await doors(dataDir, pgPort);
  // Last: its 10,000 approvals stay pending, which nothing measured after it should meet.
  server = await startServer(dataDir, pgPort);
  server.dbUrl = await new EmbeddedPostgres(dataDir, pgPort).start();
  const pages = await consolePages(server, H, CONSOLE);
  await stopServer(server);

  const results = { machine: { cpus: os.cpus().length, node: process.version }, engine: ENGINE, quick: QUICK, reference, load, drain, appr, hooks, list, auth, pages, idleRss, coldStartMs, warmStartMs, ...door };
  fs.writeFileSync(path.join(ROOT, 'bench/results.json'), JSON.stringify(results, null, 2));
  const rows = [
    ...intakeRows(load, reference),
    ...drainRows(drain),
    ...approvalRows(appr),
    ...webhookRows(hooks, reference),
    ...authRows(auth),
    ...consoleRows(pages, round),
    ...doorRows(door),
    ...list.out.map((l) => [`List runs: ${l.name} (${SEED_ROWS.toLocaleString('en')} runs)`, `p50 ${round(l.p50)} ms · p95 ${round(l.p95)} ms`, '', '', 'p95 ≤ 25 ms']),
    ['Listing plan uses a sequential scan', list.seqScan ? 'yes' : 'no', '', '', 'no'],
    ['Memory idle / peak under intake', `${round(idleRss)} MB / ${round(load.peakRss)} MB`, '', '', '≤ 300 MB'],
    ['Start to ready: empty / existing data dir', `${coldStartMs} ms / ${warmStartMs} ms`, '', '', ''],
  ];
  console.log(HEADER);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`\nListing plan (repository + taskType):\n\n\`\`\`\n${list.plan}\n\`\`\``);
}

function execBuild() {
  if (!fs.existsSync(path.join(ROOT, 'dist/main.js'))) throw new Error('run `npm run build` first (npm run bench does)');
}

main().then(() => { if (PROFILE_DIR) console.log(`\nServer CPU profiles: ${PROFILE_DIR}`); }).catch((err) => { console.error(err); process.exit(1); });
