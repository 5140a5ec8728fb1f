import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { freePort } from '../support/ports.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { eventually } from '../support/server.js';

// The embedded PostgreSQL stops under load and comes back: Flowgate answers 503 meanwhile (no
// hang, no crash), recovers without a restart, and every run it acknowledged with 201 completes.
const TIMEOUT = 180_000;
const FLOWS = '/sfp/api/flows';
let server: ServerProcess;
let dataDir: string;
let pgPort: number;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-outage-'));
  fs.chmodSync(dataDir, 0o755);
  pgPort = await freePort();
  server = await startServerProcess({ FLOWGATE_DATA_DIR: dataDir, FLOWGATE_EMBEDDED_PG_PORT: String(pgPort) });
  expect((await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['o@acme.io'] })).status).toBe(201);
}, TIMEOUT);

afterAll(() => endServer(server, [
  () => new EmbeddedPostgres(dataDir, pgPort).stop().catch(() => undefined),
  () => fs.rmSync(dataDir, { recursive: true, force: true }),
]), TIMEOUT);

test('database outage under load: 503s with a clear message, then recovery; every acknowledged run completes', async () => {
  const accepted: string[] = [];
  const refused: { status: number; ms: number; message: string }[] = [];
  let stop = false;
  const client = async () => {
    while (!stop) {
      const t = Date.now();
      try {
        const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'notifier', repositoryIdentifier: 'acme/app', text: 'load' } });
        if (r.status === 201) accepted.push(r.body.id);
        else refused.push({ status: r.status, ms: Date.now() - t, message: r.body?.message ?? '' });
      } catch (err) {
        refused.push({ status: 0, ms: Date.now() - t, message: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const clients = Array.from({ length: 6 }, client);
  await new Promise((r) => setTimeout(r, 1500));
  const before = accepted.length;
  expect(before).toBeGreaterThan(0);

  const pg = new EmbeddedPostgres(dataDir, pgPort);
  await pg.stop();
  const t = Date.now();
  const ready = await server.call('GET', '/readyz', undefined, null).catch((err) => { throw new Error(`${err.message}; server output:\n${server.output().slice(-3000)}`); });
  expect(ready.status).toBe(503);
  expect(Date.now() - t).toBeLessThan(5000);
  expect(ready.body.checks.database).toBe('failing');
  await new Promise((r) => setTimeout(r, 4000));
  expect(server.running()).toBe(true);

  await pg.start();
  await eventually(async () => ((await server.call('GET', '/readyz', undefined, null)).status === 200 ? true : undefined), 60_000, 'ready again');
  const after = accepted.length;
  await new Promise((r) => setTimeout(r, 1500));
  stop = true;
  await Promise.all(clients);
  expect(accepted.length).toBeGreaterThan(after);

  // During the outage: 503 in the sfp envelope, quickly — never a hang, never a 500.
  expect(refused.length).toBeGreaterThan(0);
  for (const r of refused) {
    if (r.status !== 503) throw new Error(`${JSON.stringify(r)}\n${server.output().split('\n').filter((l) => l.includes('request failed')).slice(0, 3).join('\n')}`);
    expect(r.status).toBe(503);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.message).toMatch(/unavailable/i);
  }
  // Every acknowledged run exists and completes.
  for (const id of accepted) {
    let seen = '';
    const run = await eventually(async () => {
      const r = await server.call('GET', `${FLOWS}/${id}`);
      seen = `${r.status} ${r.body?.status}`;
      return r.status === 200 && r.body.status === 'Completed' ? r.body : undefined;
    }, 60_000, `run ${id} completing`).catch((err) => {
      throw new Error(`${err.message} (last seen: ${seen})\n${server.output().slice(-4000)}`);
    });
    expect(run.steps[0].status).toBe('completed');
  }
}, TIMEOUT);
