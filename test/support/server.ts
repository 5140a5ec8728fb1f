import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { freshDatabaseUrl } from './database.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
const here = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURE_FLOWS = path.resolve(here, '../fixtures/flows');
export const BUILTIN_FLOWS = path.resolve(here, '../../manifests/flows');

export interface TestServer extends RunningServer {
  /** JSON request with a bearer token (the admin token unless `token` is given; `null` sends none). */
  call(method: string, urlPath: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any; headers: Headers }>;
}

/**
 * Flowgate in this test process on a fresh database: real PostgreSQL, real engine, real HTTP.
 * (The engine is a per-process singleton: one server per test file.)
 */
export async function startTestServer(opts: { flows?: string; env?: Record<string, string | undefined> } = {}): Promise<TestServer> {
  const databaseUrl = await freshDatabaseUrl(path.basename(expect.getState().testPath ?? 'test', '.test.ts'));
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    FLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    FLOWGATE_MANIFESTS_DIR: opts.flows ?? FIXTURE_FLOWS,
    FLOWGATE_EXECUTOR_ID: `test-${process.env.JEST_WORKER_ID ?? '0'}`,
    FLOWGATE_SHUTDOWN_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'silent',
    // Tests call recorders on loopback.
    FLOWGATE_OUTBOUND_ALLOW: '127.0.0.0/8',
    // Accounts and stored credentials are on, as in a configured deployment (a test turns one off with `undefined`).
    FLOWGATE_JWT_SECRET: 'test-jwt-secret-0123456789abcdef0123456789',
    FLOWGATE_ENCRYPTION_KEY: '5e'.repeat(32),
    ...opts.env,
  });
  const running = await startServer(config, pino({ level: 'silent' }));
  return { ...running, call: (m, p, b, t) => call(running.url, m, p, b, t) };
}

export async function call(base: string, method: string, urlPath: string, body?: unknown, token: string | null = ADMIN_TOKEN) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + urlPath, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  return { status: res.status, body: parsed as any, headers: res.headers };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for a run to reach one of the given sfp statuses and returns its detail. */
export function waitForRun(server: Pick<TestServer, 'call'>, id: string, statuses = ['Completed', 'Failed', 'Cancelled'], timeoutMs = 20_000) {
  return eventually(async () => {
    const r = await server.call('GET', `/sfp/api/flows/${id}`);
    return statuses.includes(r.body?.status) ? r.body : undefined;
  }, timeoutMs, `run ${id} reaching ${statuses.join('/')}`);
}

/** Creates a project (owner token) and returns its identifier. */
export async function createProject(server: Pick<TestServer, 'call'>, repo = 'acme/app', body: Record<string, unknown> = {}) {
  const r = await server.call('PUT', `/api/v1/projects/${repo}`, { provider: 'github', owners: ['owner@acme.io'], members: ['dev@acme.io'], ...body });
  if (r.status >= 300) throw new Error(`creating project ${repo}: ${r.status} ${JSON.stringify(r.body)}`);
  return repo;
}

/** Creates a token and returns its secret. */
export async function createToken(server: Pick<TestServer, 'call'>, body: Record<string, unknown>) {
  const r = await server.call('POST', '/api/v1/tokens', body);
  if (r.status !== 201) throw new Error(`creating token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

/**
 * The people of the run-API tests: projects acme/app (owners owner and second, member dev),
 * acme/other and acme/paging, and a token each — `devApp` limited to acme/app, `other` (the owner's
 * email) limited to acme/other, `viewer` a viewer of acme/app, `outsider` in no project.
 */
export async function acmePeople(server: Pick<TestServer, 'call'>): Promise<Record<'owner' | 'second' | 'dev' | 'devApp' | 'outsider' | 'viewer' | 'other', string>> {
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'] });
  await createProject(server, 'acme/other', { owners: ['owner@acme.io'] });
  await createProject(server, 'acme/paging', { owners: ['owner@acme.io'] });
  return {
    owner: await createToken(server, { name: 'owner', role: 'owner', email: 'owner@acme.io' }),
    second: await createToken(server, { name: 'second', role: 'member', email: 'second@acme.io' }),
    dev: await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io' }),
    devApp: await createToken(server, { name: 'dev-app-only', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] }),
    outsider: await createToken(server, { name: 'outsider', role: 'member', email: 'outsider@acme.io' }),
    viewer: await createToken(server, { name: 'dashboard', role: 'viewer', projects: ['acme/app'] }),
    other: await createToken(server, { name: 'other', role: 'member', email: 'owner@acme.io', projects: ['acme/other'] }),
  };
}

/** Starts a flow over the sfp API (on `acme/app` unless the payload says otherwise) and returns the run id. */
export async function startRun(server: Pick<TestServer, 'call'>, flowType: string, payload: Record<string, unknown> = {}, callback?: unknown): Promise<string> {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: flowType, repositoryIdentifier: 'acme/app', ...payload }, ...(callback ? { callback } : {}) });
  if (r.status !== 201) throw new Error(`starting ${flowType}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}
