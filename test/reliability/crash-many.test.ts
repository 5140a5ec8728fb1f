import pg from 'pg';
import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually } from '../support/server.js';

// kill -9 with 50 runs in flight — sleeping between calls, waiting at approvals, in the middle
// of a slow HTTP call — then a restart: every run finishes, no step recorded as completed runs
// again, and the pending approvals are still decidable.
const TIMEOUT = 240_000;
const FLOWS = '/sfp/api/flows';
const target = new Recorder();
let databaseUrl: string;
let server: ServerProcess;

beforeAll(async () => {
  await target.start();
  target.respond((r) => (/^\/slow\d+\/first$/.test(r.path) ? { delayMs: 4000 } : undefined));
  databaseUrl = await freshDatabaseUrl('crash_many');
}, TIMEOUT);
afterAll(() => endServer(server, [() => target.stop()]), TIMEOUT);

test('50 runs in flight survive a SIGKILL; completed steps never run again; approvals still decidable', async () => {
  const env = { DATABASE_URL: databaseUrl, FLOWGATE_EXECUTOR_ID: 'crash-many' };
  server = await startServerProcess(env);
  await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'] });
  const owner = (await server.call('POST', '/api/v1/tokens', { name: 'owner', role: 'owner', email: 'owner@acme.io' })).body.token;
  const start = async (id: string, params: Record<string, unknown>) => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id, repositoryIdentifier: 'acme/app', ...params } });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const runs: { id: string; prefix: string; kind: 'sleep' | 'slow' | 'gated' }[] = [];
  for (let i = 0; i < 20; i++) runs.push({ id: await start('two-calls', { target: `${target.url}/sleep${i}`, sleepSeconds: 5 }), prefix: `/sleep${i}`, kind: 'sleep' });
  for (let i = 0; i < 15; i++) runs.push({ id: await start('two-calls', { target: `${target.url}/slow${i}`, sleepSeconds: 0.2 }), prefix: `/slow${i}`, kind: 'slow' });
  for (let i = 0; i < 15; i++) runs.push({ id: await start('gated', { target: `${target.url}/gated${i}` }), prefix: `/gated${i}`, kind: 'gated' });

  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    // In flight: the sleepers past their first call, the slow ones inside it, the gated ones suspended.
    await eventually(async () => {
      const { rows } = await db.query(`select count(*) filter (where status = 'suspended')::int as suspended from runs`);
      const sleeping = runs.filter((r) => r.kind === 'sleep').every((r) => target.to(`${r.prefix}/first`).length === 1);
      const slowInFlight = runs.filter((r) => r.kind === 'slow').some((r) => target.to(`${r.prefix}/first`).length === 1);
      return rows[0].suspended === 15 && sleeping && slowInFlight ? true : undefined;
    }, 60_000, 'runs in flight');
    const { rows: done } = await db.query(`select r.id, s.step_ref from step_runs s join runs r on r.id = s.run_id where s.status = 'completed'`);
    server.kill('SIGKILL');
    await server.exited;

    server = await startServerProcess(env);
    // Approvals opened before the crash are decided after it, through the new process.
    for (const r of runs.filter((x) => x.kind === 'gated')) {
      const a = await server.call('POST', `${FLOWS}/approvals/${r.id}/approve`, { approver: 'Owner', approverEmail: 'owner@acme.io' }, owner);
      expect(a.body.status).toBe('approved');
    }
    await eventually(async () => {
      const { rows } = await db.query(`select count(*)::int as n from runs where status = 'completed'`);
      return rows[0].n === 50 ? true : undefined;
    }, 120_000, 'all 50 runs completed');

    // A step whose completion was recorded before the kill was not executed again.
    const pathOf = (run: (typeof runs)[number], ref: string) => (ref === 'first' ? `${run.prefix}/first` : ref === 'second' ? `${run.prefix}/second` : `${run.prefix}/after`);
    for (const { id, step_ref } of done) {
      const run = runs.find((r) => r.id === id)!;
      if (!['first', 'second', 'call'].includes(step_ref)) continue;
      expect({ run: run.prefix, step: step_ref, calls: target.to(pathOf(run, step_ref)).length }).toEqual({ run: run.prefix, step: step_ref, calls: 1 });
    }
    // Every run made each of its calls (a call cut off by the kill may have been repeated, at least once).
    for (const r of runs) {
      for (const p of r.kind === 'gated' ? ['/after'] : ['/first', '/second']) expect(target.to(`${r.prefix}${p}`).length).toBeGreaterThanOrEqual(1);
      if (r.kind === 'sleep') expect(target.to(`${r.prefix}/first`)).toHaveLength(1);
    }
  } finally {
    await db.end();
  }
}, TIMEOUT);
