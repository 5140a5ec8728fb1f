import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { freePort } from '../support/ports.js';

const TIMEOUT = 120_000;
let dir: string;
let port: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-embedded-'));
  fs.chmodSync(dir, 0o755);
  port = await freePort();
});
afterAll(async () => {
  await new EmbeddedPostgres(dir, port).stop().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

const pidFile = () => path.join(dir, 'pg', 'postmaster.pid');
const postmasterPid = () => Number(fs.readFileSync(pidFile(), 'utf8').split('\n')[0]);
async function query(url: string) {
  const client = new pg.Client({ connectionString: url.replace(/\/flowgate$/, '/postgres') });
  await client.connect();
  try {
    return (await client.query('select 1 as ok')).rows[0].ok;
  } finally {
    await client.end();
  }
}
const gone = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')')));
  } catch {
    return true;
  }
};

test('initialises once, adopts a server left running, survives a killed postmaster, stops cleanly', async () => {
  const first = await new EmbeddedPostgres(dir, port).start();
  // Local clients get the Unix socket in the data directory; TCP on 127.0.0.1 answers too.
  expect(first).toMatch(new RegExp(`^postgres://flowgate:[^@]+@${encodeURIComponent(path.join(dir, 'pg'))}:${port}/flowgate$`));
  expect(await query(first)).toBe(1);
  expect(await query(first.replace(/@[^@:]+:/, '@127.0.0.1:'))).toBe(1);
  const pid = postmasterPid();
  expect(fs.statSync(path.join(dir, 'pg-password')).mode & 0o777).toBe(0o600);

  // A second start (a restarted Flowgate) adopts the running server instead of failing on the lock.
  const adopted = await new EmbeddedPostgres(dir, port).start();
  expect(adopted).toBe(first);
  expect(postmasterPid()).toBe(pid);

  // The postmaster dies hard and leaves its lock file behind: the next start must still work.
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 100));
  expect(fs.existsSync(pidFile())).toBe(true);
  const restarted = await new EmbeddedPostgres(dir, port).start();
  expect(await query(restarted)).toBe(1);
  expect(postmasterPid()).not.toBe(pid);

  await new EmbeddedPostgres(dir, port).stop();
  expect(fs.existsSync(pidFile())).toBe(false);
}, TIMEOUT);

test('a data directory whose socket path would be too long is reached over TCP', async () => {
  const deep = path.join(dir, 'x'.repeat(90));
  fs.mkdirSync(deep, { mode: 0o755 });
  const deepPort = await freePort();
  const pgServer = new EmbeddedPostgres(deep, deepPort);
  try {
    const url = await pgServer.start();
    expect(url).toMatch(new RegExp(`@127.0.0.1:${deepPort}/flowgate$`));
    expect(await query(url)).toBe(1);
  } finally {
    await pgServer.stop();
  }
}, TIMEOUT);
