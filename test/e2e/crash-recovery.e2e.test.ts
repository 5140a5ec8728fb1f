import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/ports.js';
import { killAllServerProcesses, startServerProcess, type ProcessEnv, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { eventually, waitForRun } from '../support/server.js';

// A server process on its EMBEDDED PostgreSQL is killed with SIGKILL in the middle of a run;
// a new process on the same data directory adopts the database and finishes the run.
// (In ESM mode the `jest` object is not a global: timeouts go as the third argument.)
const TIMEOUT = 180_000;

const target = new Recorder();
let dataDir = '';

const pidFile = () => path.join(dataDir, 'pg', 'postmaster.pid');
const postmasterPid = () => Number(readFileSync(pidFile(), 'utf8').split('\n')[0]);
/** Whether a process runs (a zombie left for an init that does not reap counts as gone). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return !existsSync('/proc/self/stat');
  }
};

beforeAll(async () => {
  await target.start();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'flowgate-e2e-crash-'));
  // The embedded PostgreSQL runs as the `postgres` user when the tests run as root.
  await fs.chmod(dataDir, 0o755);
}, TIMEOUT);

afterAll(async () => {
  await killAllServerProcesses();
  // If the test failed half-way, a PostgreSQL may still run on the data directory: stop it.
  if (dataDir && existsSync(pidFile())) {
    const pid = postmasterPid();
    if (pid > 0 && alive(pid)) {
      process.kill(pid, 'SIGINT'); // fast shutdown
      await eventually(async () => (alive(pid) ? undefined : true), 30_000, `postgres ${pid} to stop`).catch(() => process.kill(pid, 'SIGKILL'));
    }
  }
  await target.stop();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
}, TIMEOUT);

test('a run survives a SIGKILL of the server: the restarted process adopts the database and finishes it, each call once', async () => {
  const env: ProcessEnv = {
    DATABASE_URL: undefined,
    FLOWGATE_DATA_DIR: dataDir,
    FLOWGATE_EMBEDDED_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
    // info: the restarted process says whether it reused the running database.
    LOG_LEVEL: 'info',
  };
  const first: ServerProcess = await startServerProcess(env, 120_000);
  const project = await first.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'] });
  expect(project.status).toBe(201);

  const started = await first.call('POST', '/sfp/api/flows/run', { payload: { id: 'two-calls', repositoryIdentifier: 'acme/app', target: target.url, sleepSeconds: 6 } });
  expect(started.status).toBe(201);
  const id = started.body.id as string;

  await target.waitFor((reqs) => reqs.some((r) => r.path === '/first'), 60_000);
  // The call's result is checkpointed just after the target answered; once the step shows as
  // completed the checkpoint is durable. (Killing inside that window would legitimately repeat
  // the call: http.request steps are at-least-once.)
  await eventually(async () => {
    const r = await first.call('GET', `/sfp/api/flows/${id}`);
    return r.body.steps?.find((s: any) => s.ref === 'first')?.status === 'completed' ? true : undefined;
  }, 30_000, 'step first to be recorded as completed');
  expect(target.to('/second')).toHaveLength(0);

  first.kill('SIGKILL');
  expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
  // The embedded PostgreSQL was started in its own session: it outlives the killed server.
  expect(existsSync(pidFile())).toBe(true);
  const orphan = postmasterPid();
  expect(alive(orphan)).toBe(true);

  const second = await startServerProcess(env, 120_000);
  expect(second.output()).toMatch(/reusing embedded PostgreSQL already running on port/);
  const run = await waitForRun(second, id, ['Completed', 'Failed', 'Cancelled'], 90_000);
  expect(run.status).toBe('Completed');
  expect(run.result).toEqual({ firstStatus: 200, secondStatus: 200 });
  for (const s of run.steps) expect(s.status).toBe('completed');
  expect(target.to('/first')).toHaveLength(1);
  expect(target.to('/second')).toHaveLength(1);
  // The durable sleep kept its original deadline across the restart.
  expect(target.to('/second')[0].at - target.to('/first')[0].at).toBeGreaterThanOrEqual(5_900);

  // Graceful stop: exits 0 and takes the embedded PostgreSQL down with it.
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    second.stop(60_000),
    new Promise<'not exited within 30 s'>((r) => { timer = setTimeout(() => r('not exited within 30 s'), 30_000); }),
  ]).finally(() => clearTimeout(timer));
  expect(stopped).toEqual({ code: 0, signal: null });
  expect(existsSync(pidFile())).toBe(false);
  expect(alive(orphan)).toBe(false);
}, TIMEOUT);
