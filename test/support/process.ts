import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { ADMIN_TOKEN, FIXTURE_FLOWS, call } from './server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: the server process runs from here, like `npm start`. */
export const REPO_ROOT = path.resolve(here, '../..');
const MAIN = path.join(REPO_ROOT, 'dist/main.js');

/** One executor id for every e2e process, so a restarted process recovers its predecessor's workflows. */
export const E2E_EXECUTOR_ID = 'flowgate-e2e';

/** A value of `undefined` removes the variable from the child's environment. */
export type ProcessEnv = Record<string, string | undefined>;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** Base URL (http://127.0.0.1:PORT). */
  url: string;
  port: number;
  pid: number;
  /** The environment the process was started with (without the inherited variables). */
  env: ProcessEnv;
  /** Everything printed so far, stdout and stderr interleaved as received. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** JSON request with a bearer token (the admin token unless `token` is given; `null` sends none). */
  call(method: string, urlPath: string, body?: unknown, token?: string | null): ReturnType<typeof call>;
  /** Sends a signal (SIGKILL by default) if the process is still running. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. Resolves with how it exited. */
  stop(timeoutMs?: number): Promise<Exit>;
  running(): boolean;
  /** Resolves when the process has exited and its output has been read. */
  exited: Promise<Exit>;
}

const live = new Set<ChildProcess>();

// Last resort: a jest worker that exits (even on a crash) takes its servers with it.
process.once('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** Variables of the test process that must not leak into a server process unless a test sets them. */
const isScrubbed = (key: string) =>
  key.startsWith('FLOWGATE_') || ['DATABASE_URL', 'PORT', 'HOST', 'LOG_LEVEL', 'NODE_OPTIONS'].includes(key);

/**
 * Spawns `node dist/main.js` without waiting for it to be ready (start-up failure tests).
 * `env` is applied over the defaults: LOG_LEVEL=warn, a free PORT, HOST=127.0.0.1, the fixture
 * flows, the test admin token and a fixed executor id.
 */
export async function spawnServerProcess(env: ProcessEnv = {}): Promise<ServerProcess> {
  const own: ProcessEnv = {
    LOG_LEVEL: 'warn',
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    FLOWGATE_MANIFESTS_DIR: FIXTURE_FLOWS,
    FLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    FLOWGATE_EXECUTOR_ID: E2E_EXECUTOR_ID,
    // Tests call recorders on loopback.
    FLOWGATE_OUTBOUND_ALLOW: '127.0.0.0/8',
    ...env,
  };
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !isScrubbed(k)) childEnv[k] = v;
  for (const [k, v] of Object.entries(own)) if (v !== undefined) childEnv[k] = v;

  const child = spawn(process.execPath, [MAIN], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    // spawn reports its failure asynchronously on 'error'.
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`could not spawn ${process.execPath} ${MAIN}: ${err.message}`);
  }
  live.add(child);

  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; out += d; });

  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(child);
      // 'close' comes once stdout/stderr are drained; do not wait for ever in case a
      // grandchild kept a copy of the pipes.
      const timer = setTimeout(() => resolve({ code, signal }), 2000);
      child.once('close', () => { clearTimeout(timer); resolve({ code, signal }); });
    });
  });

  const port = Number(childEnv.PORT);
  const url = `http://127.0.0.1:${port}`;
  const kill = (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!done) {
      try { child.kill(signal); } catch { /* already gone */ }
    }
  };
  const stop = async (timeoutMs = 30_000): Promise<Exit> => {
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    url, port, pid: child.pid, env: own,
    output: () => out, stdout: () => stdout, stderr: () => stderr,
    call: (m, p, b, t) => call(url, m, p, b, t),
    kill, stop, running: () => !done, exited,
  };
}

/**
 * Starts the real server process and waits until GET /readyz answers 200. Fails with the
 * captured output if the process exits first or is not ready within `readyTimeoutMs`.
 */
export async function startServerProcess(env: ProcessEnv = {}, readyTimeoutMs = 60_000): Promise<ServerProcess> {
  const proc = await spawnServerProcess(env);
  const until = Date.now() + readyTimeoutMs;
  let last = '';
  for (;;) {
    if (!proc.running()) {
      const exit = await proc.exited;
      throw new Error(`server process exited before it was ready (code ${exit.code}, signal ${exit.signal}); output:\n${proc.output()}`);
    }
    try {
      const res = await fetch(`${proc.url}/readyz`, { signal: AbortSignal.timeout(5000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return proc;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > until) {
      proc.kill('SIGKILL');
      await proc.exited;
      throw new Error(`server process not ready within ${readyTimeoutMs} ms (last /readyz: ${last}); output:\n${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Kills (SIGKILL) every server process still running and waits for them to exit. */
export async function killAllServerProcesses(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of [...live]) {
    waits.push(new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
      child.once('exit', resolve);
      try { child.kill('SIGKILL'); } catch { resolve(undefined); }
    }));
  }
  await Promise.all(waits);
}

/**
 * A test file's teardown: stops its server gracefully (with `exitsCleanly`, the exit must be code 0),
 * then, however that went, kills any server process still alive and runs the other clean-ups.
 */
export async function endServer(server: ServerProcess | undefined, cleanups: Array<() => Promise<unknown> | unknown>, { exitsCleanly = false } = {}): Promise<void> {
  try {
    if (server?.running()) {
      const exit = await server.stop(30_000);
      if (exitsCleanly) expect(exit).toEqual({ code: 0, signal: null });
    }
  } finally {
    await killAllServerProcesses();
    for (const cleanup of cleanups) await cleanup();
  }
}
