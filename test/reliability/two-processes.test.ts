import pg from 'pg';
import { freshDatabaseUrl } from '../support/database.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually } from '../support/server.js';

// Two Flowgate processes on one database under load: no run or step executes twice, and an
// approval decided on either process wakes the run wherever it waits.
const TIMEOUT = 240_000;
const FLOWS = '/sfp/api/flows';
const target = new Recorder();
let databaseUrl: string;
const procs: ServerProcess[] = [];

beforeAll(async () => {
  await target.start();
  databaseUrl = await freshDatabaseUrl('two_procs');
  for (const name of ['a', 'b']) procs.push(await startServerProcess({ DATABASE_URL: databaseUrl, FLOWGATE_EXECUTOR_ID: `proc-${name}`, FLOWGATE_ENGINE: 'dbos' }));
}, TIMEOUT);
afterAll(async () => {
  try {
    for (const p of procs) if (p.running()) await p.stop(30_000);
  } finally {
    await killAllServerProcesses();
    await target.stop();
  }
}, TIMEOUT);

test('runs spread over two processes execute each step once; approvals decided on the other process wake them', async () => {
  const [a, b] = procs;
  await a.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'] });
  const owner = (await a.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: 'owner@acme.io' })).body.token;
  const calls: Promise<{ id: string; prefix: string; gated: boolean }>[] = [];
  for (let i = 0; i < 40; i++) {
    const via = i % 2 ? b : a;
    const gated = i % 4 === 0;
    const prefix = `/r${i}`;
    calls.push(via.call('POST', `${FLOWS}/run`, { payload: gated
      ? { id: 'gated', repositoryIdentifier: 'acme/app', target: `${target.url}${prefix}` }
      : { id: 'two-calls', repositoryIdentifier: 'acme/app', target: `${target.url}${prefix}`, sleepSeconds: 0.3 } })
      .then((r) => { expect(r.status).toBe(201); return { id: r.body.id, prefix, gated }; }));
  }
  const runs = await Promise.all(calls);
  // Each gated run is approved through the process that did NOT start it.
  for (const [i, r] of runs.entries()) {
    if (!r.gated) continue;
    const other = i % 2 ? a : b;
    await eventually(async () => ((await other.call('GET', `${FLOWS}/${r.id}`)).body.status === 'Suspended' ? true : undefined), 30_000, `run ${r.id} suspended`);
    expect((await other.call('POST', `${FLOWS}/approvals/${r.id}/approve`, { approver: 'O', approverEmail: 'owner@acme.io' }, owner)).body.status).toBe('approved');
  }
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await eventually(async () => {
      const { rows } = await db.query(`select count(*)::int as n from runs where status = 'completed'`);
      return rows[0].n === 40 ? true : undefined;
    }, 120_000, 'all runs completed');
    for (const r of runs) {
      for (const p of r.gated ? ['/after'] : ['/first', '/second']) expect({ call: `${r.prefix}${p}`, n: target.to(`${r.prefix}${p}`).length }).toEqual({ call: `${r.prefix}${p}`, n: 1 });
    }
    const { rows: steps } = await db.query(`select run_id, count(*)::int as n, max(attempt)::int as attempts from step_runs group by run_id`);
    for (const s of steps) expect(s.attempts).toBe(1);
    // Both processes executed part of the work (the engine records who ran each workflow).
    const sys = new pg.Client({ connectionString: databaseUrl.replace(/\/([^/]+)$/, '/$1_dbos') });
    await sys.connect();
    try {
      const { rows } = await sys.query(`select distinct executor_id from dbos.workflow_status where name = 'flowgate.run'`);
      expect(rows.map((r) => r.executor_id).sort()).toEqual(['proc-a', 'proc-b']);
    } finally {
      await sys.end();
    }
  } finally {
    await db.end();
  }
}, TIMEOUT);
