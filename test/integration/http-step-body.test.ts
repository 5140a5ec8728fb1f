import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProject, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// An http.request step reads at most 1 MiB of an answer: a huge or endless body costs neither
// the server's memory nor the step's time.
let server: TestServer;
let endless: http.Server;
let url: string;
/** Bytes the endless answer wrote, and whether its reader hung up. */
const sent = { bytes: 0, closedByReader: false };
/** `/hang` never answers: when each such request arrived and when its caller hung up. */
const hung: { at: number; closedAt?: number }[] = [];

beforeAll(async () => {
  endless = http.createServer((req, res) => {
    if (req.url === '/hang') {
      const entry: { at: number; closedAt?: number } = { at: Date.now() };
      hung.push(entry);
      res.on('close', () => { entry.closedAt = Date.now(); });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const more = () => {
      // Writes for as long as the reader reads (and far beyond 1 MiB if it never stops).
      while (!res.destroyed && sent.bytes < 512 * 1024 * 1024 && res.write(chunk)) sent.bytes += chunk.length;
    };
    res.on('drain', more);
    res.on('close', () => { sent.closedByReader = !res.writableEnded; });
    more();
  });
  await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
  server = await startTestServer();
  await createProject(server);
});
afterAll(async () => {
  await server?.stop();
  endless?.closeAllConnections();
  await new Promise((r) => endless?.close(r));
});

test('an endless answer: the step completes with the first 1 MiB, says the body was cut, and hangs up', async () => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'failing', repositoryIdentifier: 'acme/app', target: url, path: '/endless' } });
  expect(r.status).toBe(201);
  const run = await waitForRun(server, r.body.id);
  expect(run.status).toBe('Completed');
  const call = run.steps.find((s: any) => s.ref === 'call');
  // Stored outputs are capped as well (64 KiB): what is kept says how big the read body was.
  expect(call.output).toMatchObject({ truncated: true });
  expect(call.output.size).toBeGreaterThan(1024 * 1024);
  expect(call.output.size).toBeLessThan(1024 * 1024 + 4096);
  const logs = (await server.call('GET', `/sfp/api/flows/${r.body.id}/logs`)).body.logs.map((l: any) => l.message);
  expect(logs).toEqual(expect.arrayContaining([expect.stringMatching(/→ 200 \(\d+ ms; body cut at 1 MiB\)$/)]));
  expect(sent.closedByReader).toBe(true);
  expect(sent.bytes).toBeLessThan(64 * 1024 * 1024);
});

test('cancelling a run hangs up on its HTTP call in flight instead of waiting for the answer or the timeout', async () => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'failing', repositoryIdentifier: 'acme/app', target: url, path: '/hang' } });
  expect(r.status).toBe(201);
  await eventually(async () => (hung.length === 1 ? true : undefined));
  expect((await server.call('POST', `/sfp/api/flows/${r.body.id}/cancel`)).status).toBe(200);
  // The step's timeout is 30 s; the call is abandoned as soon as the executor hears of the cancel.
  const closed = await eventually(async () => hung[0].closedAt, 5_000, 'the call hung up on');
  expect(closed - hung[0].at).toBeLessThan(10_000);
  expect((await waitForRun(server, r.body.id)).status).toBe('Cancelled');
});
