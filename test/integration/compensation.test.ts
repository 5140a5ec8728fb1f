import http from 'node:http';
import { Recorder } from '../support/recorder.js';
import { createProject, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

/**
 * Holds every request open until the test lets it go, and counts how many are open at once:
 * the steps running at the same time, measured without timing.
 */
class HoldingRecorder {
  readonly paths: string[] = [];
  private held: http.ServerResponse[] = [];
  open = 0;
  maxOpen = 0;
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.paths.push(req.url ?? '');
        this.open++;
        this.maxOpen = Math.max(this.maxOpen, this.open);
        this.held.push(res);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** Answers the oldest held request. */
  releaseOne(): void {
    const res = this.held.shift();
    if (!res) throw new Error('nothing held');
    this.open--;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  }

  async arrived(n: number): Promise<void> {
    await eventually(async () => (this.paths.length >= n ? true : undefined), 20_000, `${n} requests`);
  }

  async stop(): Promise<void> {
    while (this.held.length) this.releaseOne();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

let server: TestServer;
const target = new Recorder();
const holder = new HoldingRecorder();

beforeAll(async () => {
  await Promise.all([target.start(), holder.start()]);
  target.respond((r) => (r.path.endsWith('/fail') ? { status: 500, body: { error: 'boom' } } : undefined));
  server = await startTestServer();
  await createProject(server);
});
afterAll(async () => {
  await server?.stop();
  await Promise.all([target.stop(), holder.stop()]);
});

const start = async (id: string, params: Record<string, unknown>) => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id, repositoryIdentifier: 'acme/app', ...params } });
  expect(r.status).toBe(201);
  return r.body.id as string;
};
const step = (run: any, ref: string) => run.steps.find((s: any) => s.ref === ref);
/** The paths one run called, below its own prefix of the recorder. */
const calls = (prefix: string) => target.requests.filter((r) => r.path.startsWith(`${prefix}/`)).map((r) => r.path.slice(prefix.length));

test('maxParallelSteps: 2 never has more than two steps running; each waiting step starts when a slot frees', async () => {
  const id = await start('wide', { target: holder.url });
  for (let n = 2; n <= 6; n++) {
    // n requests arrived and are held: the next may only arrive once one is answered.
    await holder.arrived(n);
    expect(holder.open).toBeLessThanOrEqual(2);
    holder.releaseOne();
  }
  holder.releaseOne();
  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  expect(holder.paths.sort()).toEqual(['/s1', '/s2', '/s3', '/s4', '/s5', '/s6']);
  expect(holder.maxOpen).toBe(2);
  expect(step(run, 'join').status).toBe('completed');
});

test('a step failing after a granted one: the grant is revoked exactly once, latest first, and the run fails', async () => {
  const run = await waitForRun(server, await start('compensating', { target: `${target.url}/a`, workPath: '/fail' }));
  expect(run.status).toBe('Failed');
  expect(run.error).toMatch(/^step work failed: /);
  // reverse dependency order: the grant is undone before the reservation it depended on
  expect(calls('/a')).toEqual(['/reserve', '/grant', '/fail', '/revoke', '/release']);
  expect(target.requests.find((r) => r.path === '/a/revoke')!.json).toEqual({ granted: 200 });
  expect(step(run, 'revoke').status).toBe('completed');
  expect(step(run, 'release').status).toBe('completed');
  expect(step(run, 'report').status).toBe('cancelled');
});

test('a run that does not fail runs no compensation', async () => {
  const run = await waitForRun(server, await start('compensating', { target: `${target.url}/b` }));
  expect(run.status).toBe('Completed');
  expect(calls('/b')).toEqual(['/reserve', '/grant', '/work']);
  expect(step(run, 'revoke').status).toBe('skipped');
  expect(step(run, 'release').status).toBe('skipped');
});
