import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { signPayload, verifySignature } from '../../src/core/signing.js';
import { Recorder } from '../support/recorder.js';
import { BUILTIN_FLOWS, createProject, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// Outbound requests whose address a flow, a payload or a caller chose go through the outbound
// guard. This server allows `localhost` by name only: the recorder is reachable as
// http://localhost:<port>, never as http://127.0.0.1:<port> (nor any other private address).

const FLOWS = '/sfp/api/flows';
const SECRET = 'whsec-outbound-0123456789abcdef';
const REFUSAL_HINT = '(loopback, private, link-local and metadata addresses are reached only when listed in FLOWGATE_OUTBOUND_ALLOW)';
let server: TestServer;
const recorder = new Recorder();
let redirector: http.Server;
let redirectorPort: number;
let flowsDir: string;

beforeAll(async () => {
  await recorder.start();
  recorder.respond((r) => (r.path.startsWith('/api/pools/') ? { body: { available: 5, total: 8 } } : undefined));
  // Answers every request with a redirect to the recorder by its loopback address.
  redirector = http.createServer((req, res) => {
    res.writeHead(302, { location: `${recorder.url}/inner` });
    res.end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  redirectorPort = (redirector.address() as AddressInfo).port;

  flowsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-outbound-'));
  // The shipped manifest, unchanged: its URL must keep working with encoding in place.
  fs.copyFileSync(path.join(BUILTIN_FLOWS, 'monitor-pool.yaml'), path.join(flowsDir, 'monitor-pool.yaml'));
  fs.writeFileSync(path.join(flowsDir, 'call.yaml'), [
    'id: call', 'name: Calls a URL', 'category: testing',
    'parameters:', '  - { name: url, type: string, required: true }',
    'steps:', '  - ref: call', '    type: http.request', '    retry: { attempts: 3, backoffSeconds: 1 }', '    with: { url: "{{ payload.url }}" }', '',
  ].join('\n'));
  fs.writeFileSync(path.join(flowsDir, 'hello.yaml'), [
    'id: hello', 'name: Says hello', 'category: testing',
    'steps:', '  - ref: say', '    type: log', '    with: { message: hello }', '',
  ].join('\n'));
  server = await startTestServer({ flows: flowsDir, env: {
    FLOWGATE_OUTBOUND_ALLOW: 'localhost',
    FLOWGATE_WEBHOOK_SECRET: SECRET,
    FLOWGATE_CREDENTIAL_POOL_API: `http://localhost:${new URL(recorder.url).port}/api`,
  } });
  await createProject(server, 'acme/app');
});

afterAll(async () => {
  await server?.stop();
  await recorder.stop();
  await new Promise<void>((resolve) => redirector.close(() => resolve()));
  fs.rmSync(flowsDir, { recursive: true, force: true });
});

const start = async (id: string, params: Record<string, unknown> = {}, callback?: unknown) => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id, repositoryIdentifier: 'acme/app', ...params }, ...(callback ? { callback } : {}) });
  if (r.status !== 201) throw new Error(`start ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
};
const logsOf = async (id: string) => ((await server.call('GET', `${FLOWS}/${id}/logs`)).body.logs as { message: string }[]).map((l) => l.message);
const refusalsAudited = async (host: string) =>
  (await server.services.audit.list({ targetType: 'host', targetId: host })).filter((e) => e.action === 'outbound.refused');

test('an http.request step to a loopback address fails at once with a clear error, and nothing is requested', async () => {
  const before = (await refusalsAudited('127.0.0.1')).length;
  const run = await waitForRun(server, await start('call', { url: `${recorder.url}/probe` }));
  expect(run.status).toBe('Failed');
  const step = run.steps.find((s: { ref: string }) => s.ref === 'call');
  expect(step.error).toBe(`GET ${recorder.url}/probe refused: 127.0.0.1 is a loopback address ${REFUSAL_HINT}`);
  // Refused for good: the step's retry policy does not try again.
  expect(step.attempt).toBe(1);
  expect(recorder.requests.filter((r) => r.path === '/probe')).toEqual([]);
  expect((await refusalsAudited('127.0.0.1')).length).toBe(before + 1);
});

test('an http.request step to the cloud metadata address fails with a clear error', async () => {
  const run = await waitForRun(server, await start('call', { url: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' }));
  expect(run.status).toBe('Failed');
  expect(run.steps[0].error).toBe(`GET http://169.254.169.254/latest/meta-data/iam/security-credentials/ refused: 169.254.169.254 is a cloud metadata address ${REFUSAL_HINT}`);
  const audited = await refusalsAudited('169.254.169.254');
  expect(audited[0].details).toMatchObject({ address: '169.254.169.254', reason: '169.254.169.254 is a cloud metadata address', redirect: false });
});

test('a redirect from an allowed host to a refused address is refused; the refused address gets nothing', async () => {
  const run = await waitForRun(server, await start('call', { url: `http://localhost:${redirectorPort}/go` }));
  expect(run.status).toBe('Failed');
  expect(run.steps[0].error).toBe(`GET http://localhost:${redirectorPort}/go redirect to 127.0.0.1:${new URL(recorder.url).port} refused: 127.0.0.1 is a loopback address ${REFUSAL_HINT}`);
  expect(recorder.requests.filter((r) => r.path === '/inner')).toEqual([]);
});

test('a payload value cannot leave its path segment: ../admin?x stays inside /pools/', async () => {
  const run = await waitForRun(server, await start('monitor-pool', { poolTag: '../admin?x' }));
  expect(run.status).toBe('Completed');
  const calls = recorder.requests.filter((r) => r.path.startsWith('/api/'));
  expect(calls.map((r) => r.path)).toEqual(['/api/pools/..%2Fadmin%3Fx']);
  expect(run.result).toMatchObject({ poolTag: '../admin?x', available: 5, low: false });
});

test('a webhook callback to a private address is not delivered, and the run log says why', async () => {
  const id = await start('hello', {}, { type: 'webhook', webhook: { url: `${recorder.url}/callback?token=abc` } });
  await waitForRun(server, id);
  const line = await eventually(async () => (await logsOf(id)).find((m) => m.startsWith('Result not delivered')), 20_000, 'the not-delivered line');
  expect(line).toBe(`Result not delivered: posting run.finished for run ${id} to webhook ${recorder.url}: refused: 127.0.0.1 is a loopback address ${REFUSAL_HINT}`);
  expect(recorder.requests.filter((r) => r.path.startsWith('/callback'))).toEqual([]);
});

test('a delivered callback is signed for run.notice: it does not verify for another purpose', async () => {
  const url = `http://localhost:${new URL(recorder.url).port}/allowed-callback`;
  const id = await start('hello', {}, { type: 'webhook', webhook: { url } });
  await recorder.waitFor((reqs) => reqs.some((r) => r.path === '/allowed-callback'));
  const delivery = recorder.to('/allowed-callback')[0];
  expect(delivery.json).toMatchObject({ event: 'run.finished', runId: id });
  const header = delivery.headers['x-flowgate-signature-256'] as string;
  expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifySignature(header, delivery.body, SECRET, 'run.notice')).toBe(true);
  expect(verifySignature(header, delivery.body, SECRET, 'approval.decision')).toBe(false);
  expect(verifySignature(header, delivery.body, SECRET, 'cicd.dispatch')).toBe(false);
  expect(verifySignature(header, delivery.body, 'another-secret-0123456789', 'run.notice')).toBe(false);
  expect(verifySignature(header, `${delivery.body} `, SECRET, 'run.notice')).toBe(false);
});

describe('verifySignature', () => {
  const body = '{"event":"approval.decided","approval":{"status":"approved"}}';
  const at = Date.parse('2026-11-20T10:00:00Z');

  test('a signature made for one purpose does not verify for another', () => {
    const header = signPayload(SECRET, 'run.notice', body, at);
    expect(verifySignature(header, body, SECRET, 'run.notice', 300, at)).toBe(true);
    expect(verifySignature(header, body, SECRET, 'approval.decision', 300, at)).toBe(false);
    expect(verifySignature(signPayload(SECRET, 'approval.decision', body, at), body, SECRET, 'approval.decision', 300, at)).toBe(true);
  });

  test('a stale (or far future) timestamp is refused; within the tolerance it verifies', () => {
    const header = signPayload(SECRET, 'cicd.dispatch', body, at);
    expect(verifySignature(header, body, SECRET, 'cicd.dispatch', 300, at + 299_000)).toBe(true);
    expect(verifySignature(header, body, SECRET, 'cicd.dispatch', 300, at + 301_000)).toBe(false);
    expect(verifySignature(header, body, SECRET, 'cicd.dispatch', 300, at - 301_000)).toBe(false);
    expect(verifySignature(header, body, SECRET, 'cicd.dispatch', 3600, at + 3_000_000)).toBe(true);
  });

  test('a re-timestamped signature does not verify, nor do malformed headers', () => {
    const header = signPayload(SECRET, 'run.notice', body, at);
    const moved = header.replace(/^t=(\d+)/, (_, t: string) => `t=${Number(t) + 60}`);
    expect(verifySignature(moved, body, SECRET, 'run.notice', 300, at)).toBe(false);
    for (const bad of [undefined, '', 'sha256=abc', `v1=${header.split('v1=')[1]}`, 't=abc,v1=00', header.replace(/v1=.*/, 'v1=zz')]) {
      expect(verifySignature(bad, body, SECRET, 'run.notice', 300, at)).toBe(false);
    }
    // A second v1 (e.g. signed with a rotated secret) may be present.
    expect(verifySignature(`${header},v1=${'0'.repeat(64)}`, body, SECRET, 'run.notice', 300, at)).toBe(true);
  });
});
