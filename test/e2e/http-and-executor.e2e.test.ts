import { freshDatabaseUrl } from '../support/database.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { eventually } from '../support/server.js';

// FLOWGATE_EXECUTOR=off: one process serves HTTP and leaves executing runs to another. Runs
// started, decided and cancelled on the first are executed, woken and stopped by the second.
const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
let http: ServerProcess;
let worker: ServerProcess | undefined;
let env: Record<string, string>;
let owner: string;

beforeAll(async () => {
  env = { DATABASE_URL: await freshDatabaseUrl('e2e_split') };
  http = await startServerProcess({ ...env, FLOWGATE_EXECUTOR_ID: 'http-only', FLOWGATE_EXECUTOR: 'off' });
  expect((await http.call('PUT', '/api/v1/projects/split/app', { provider: 'github', owners: ['owner@acme.io'] })).status).toBe(201);
  const token = await http.call('POST', '/api/v1/tokens', { name: 'owner', role: 'member', email: 'owner@acme.io' });
  owner = token.body.token;
}, TIMEOUT);

afterAll(async () => {
  try {
    for (const p of [http, worker]) if (p?.running()) expect(await p.stop(30_000)).toEqual({ code: 0, signal: null });
  } finally {
    await killAllServerProcesses();
  }
}, TIMEOUT);

const status = async (id: string) => (await http.call('GET', `${FLOWS}/${id}`)).body.status as string;

test('a run started where nothing executes waits; an executing replica takes it up at once', async () => {
  const started = await http.call('POST', `${FLOWS}/run`, { payload: { id: 'gated-log', repositoryIdentifier: 'split/app' } });
  expect(started.status).toBe(201);
  await new Promise((r) => setTimeout(r, 2_000));
  // Committed, not claimed: no step has started.
  expect((await http.call('GET', `/v1/workflow-runs/${started.body.id}`)).body.status).toBe('pending');
  expect((await http.call('GET', `/v1/workflow-runs/${started.body.id}/steps`)).body).toEqual([]);

  worker = await startServerProcess({ ...env, FLOWGATE_EXECUTOR_ID: 'worker' });
  await eventually(async () => ((await status(started.body.id)) === 'Suspended' ? true : undefined), 30_000, 'the run at its approval');
  // Decided through the HTTP process: the worker is woken and finishes the run.
  const approved = await http.call('POST', `${FLOWS}/approvals/${started.body.id}/approve`, { approver: 'Owner', approverEmail: 'owner@acme.io' }, owner);
  expect(approved.status).toBe(200);
  await eventually(async () => ((await status(started.body.id)) === 'Completed' ? true : undefined), 30_000, 'the run completed');
}, TIMEOUT);

test('a run executing on the worker is cancelled through the HTTP process, its steps stopped', async () => {
  const started = await http.call('POST', `${FLOWS}/run`, { payload: { id: 'sleeper', repositoryIdentifier: 'split/app' } });
  expect(started.status).toBe(201);
  await eventually(async () => ((await status(started.body.id)) === 'Waiting' ? true : undefined), 30_000, 'the run asleep');
  expect((await http.call('POST', `${FLOWS}/${started.body.id}/cancel`)).status).toBe(200);
  const run = (await http.call('GET', `${FLOWS}/${started.body.id}`)).body;
  expect(run.status).toBe('Cancelled');
  expect(run.steps.map((s: { status: string }) => s.status)).not.toContain('running');
}, TIMEOUT);
