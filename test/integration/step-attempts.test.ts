import { Recorder } from '../support/recorder.js';
import { createProject, startTestServer, waitForRun, type TestServer } from '../support/server.js';

let server: TestServer;
const target = new Recorder();

beforeAll(async () => {
  await target.start();
  // /ok/flaky fails twice then answers; /bad/flaky always fails.
  let flaky = 0;
  target.respond((r) => (r.path === '/ok/flaky' ? (++flaky <= 2 ? { status: 503, body: { n: flaky } } : { status: 200 }) : undefined));
  target.respond((r) => (r.path === '/bad/flaky' ? { status: 500 } : undefined));
  server = await startTestServer();
  await createProject(server);
});
afterAll(async () => {
  await server?.stop();
  await target.stop();
});

const run = async (prefix: string) => {
  const r = await server.call('POST', '/sfp/api/flows/run', { payload: { id: 'retrying', repositoryIdentifier: 'acme/app', target: `${target.url}${prefix}` } });
  expect(r.status).toBe(201);
  return waitForRun(server, r.body.id);
};

test('the run detail lists each attempt of a retried step: number, status, error, start and end', async () => {
  const detail = await run('/ok');
  expect(detail.status).toBe('Completed');
  const flaky = detail.steps.find((s: any) => s.ref === 'flaky');
  expect(flaky.attempt).toBe(3);
  expect(flaky.attempts.map((a: any) => [a.attempt, a.status])).toEqual([[1, 'failed'], [2, 'failed'], [3, 'completed']]);
  expect(flaky.attempts[0].error).toMatch(/503/);
  expect(flaky.attempts[2].error).toBeNull();
  for (const a of flaky.attempts) {
    expect(Date.parse(a.startedAt)).toBeLessThanOrEqual(Date.parse(a.finishedAt));
  }
  expect(Date.parse(flaky.attempts[0].finishedAt)).toBeLessThanOrEqual(Date.parse(flaky.attempts[1].startedAt));
});

test('a step failing every attempt ends with each attempt failed and the last error', async () => {
  const detail = await run('/bad');
  expect(detail.status).toBe('Failed');
  const flaky = detail.steps.find((s: any) => s.ref === 'flaky');
  expect(flaky.attempts.map((a: any) => a.status)).toEqual(['failed', 'failed', 'failed']);
  expect(flaky.attempts[2].error).toBe(flaky.error);
});
