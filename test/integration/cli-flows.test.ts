import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN, BUILTIN_FLOWS, createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

/*
 * The CLI's run, status, approve, reject and cancel commands against Flowgate in this process,
 * with the shipped flow types (the quick start's hello-approval among them).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const CLI = path.join(root, 'dist/cli/index.js');
const FLOWS = '/sfp/api/flows';

let server: TestServer;
/** The project's owner (approves) and a member (starts runs): different people, as self-approval is refused. */
let owner: string;
let dev: string;

interface CliResult { code: number; stdout: string; stderr: string }

function flowgate(args: string[], token: string | undefined, env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const childEnv: Record<string, string | undefined> = { ...process.env, FLOWGATE_URL: server.url, FLOWGATE_TOKEN: token, DATABASE_URL: undefined, ...env };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { cwd: root, env: childEnv as NodeJS.ProcessEnv, timeout: 45_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** The CLI as a running process, for commands that wait: its output so far, and its end. */
function flowgateRunning(args: string[], token: string) {
  const child = spawn('node', [CLI, ...args], { cwd: root, env: { ...process.env, FLOWGATE_URL: server.url, FLOWGATE_TOKEN: token } });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, ...out })));
  return { out, done };
}

const startedId = (r: CliResult) => /^Run (\S+) started/m.exec(r.stdout)?.[1];
const pendingApproval = (runId: string) => eventually(async () => {
  const r = await server.call('GET', `${FLOWS}/approvals/${runId}`);
  return r.status === 200 && r.body.status === 'pending' ? r.body : undefined;
}, 20_000, `a pending approval for ${runId}`);
const runCount = async () => (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app`)).body.totalCount as number;
/** The id of the run started after there were `before` (for commands that print it only at the end). */
const newRun = (before: number) => eventually(async () => {
  const runs = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&limit=1`)).body;
  return runs.totalCount > before ? runs.runs[0].id as string : undefined;
}, 20_000, 'the new run');

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  server = await startTestServer({ flows: BUILTIN_FLOWS });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  owner = await createToken(server, { name: 'owner-cli', role: 'member', email: 'owner@acme.io', projects: ['acme/app'] });
  dev = await createToken(server, { name: 'dev-cli', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] });
});
afterAll(async () => {
  await server?.stop();
});

test('whoami names the calling token and its person, never its secret', async () => {
  const r = await server.call('GET', '/api/v1/whoami', undefined, dev);
  expect(r.status).toBe(200);
  expect(r.body).toEqual({ id: expect.any(String), name: 'dev-cli', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] });
  expect((await server.call('GET', '/api/v1/whoami', undefined, null)).status).toBe(401);
});

test('hello-approval: run, status, self-approval refused, approve as an owner with a reason, completed', async () => {
  const started = await flowgate(['run', 'hello-approval', '--repo', 'acme/app', 'greeting=Hi there'], dev);
  expect(started.stderr).toBe('');
  expect(started.code).toBe(0);
  const id = startedId(started)!;
  expect(started.stdout).toContain(`Run ${id} started: hello-approval on acme/app`);
  const approval = await pendingApproval(id);
  expect(approval.approvers).toEqual(['owner@acme.io']);

  const status = await flowgate(['status', id], dev);
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(`Run ${id}: hello-approval on acme/app`);
  expect(status.stdout).toMatch(/status:\s+Suspended \(suspended\)/);
  expect(status.stdout).toContain(`waiting for approval ${approval.id}: 0 of 1, by owner@acme.io`);
  expect(status.stdout).toContain('"dev@acme.io asks to log: Hi there"');
  expect(status.stdout).toMatch(/^\s+approve\s+approval\s+\S+/m);

  // Only the project's owners decide: the member who asked is refused, nothing changes.
  const notOwner = await flowgate(['approve', id], dev);
  expect(notOwner.code).toBe(1);
  expect(notOwner.stderr).toBe('flowgate: 403 dev@acme.io is not an owner of acme/app, and only owners may decide this request\n');
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', approvalsReceived: 0 });

  const approved = await flowgate(['approve', id, '--reason', 'fine by me'], owner);
  expect(approved.stderr).toBe('');
  expect(approved.code).toBe(0);
  expect(approved.stdout).toBe(`Approval ${approval.id} of run ${id} is approved (by owner@acme.io: fine by me).\n`);
  const decided = (await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body;
  expect(decided.decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', verdict: 'approve', reason: 'fine by me' })]);

  const run = await waitForRun(server, id);
  expect(run.status).toBe('Completed');
  const logs = (await server.call('GET', `${FLOWS}/${id}/logs`)).body.logs.map((l: any) => l.message);
  expect(logs).toContain('Hi there (approved by owner@acme.io)');
  const final = await flowgate(['status', id], dev);
  expect(final.stdout).toMatch(/status:\s+Completed \(completed\)/);
  expect(final.stdout).toContain('result:       {"greeting":"Hi there","approvedBy":["owner@acme.io"]}');
  const json = JSON.parse((await flowgate(['status', id, '--json'], dev)).stdout);
  expect(json).toMatchObject({ id, status: 'Completed', result: { greeting: 'Hi there' } });
});

test('run --wait follows the run through its approval and exits 0 once it has completed', async () => {
  const waiting = flowgateRunning(['run', 'hello-approval', '--repo', 'acme/app', '--wait'], dev);
  // It says whom it waits for; then an owner approves.
  const told = await eventually(async () => /^Waiting for approval (\S+) by owner@acme\.io: flowgate approve (\S+) \(as one of them\)\n$/.exec(waiting.out.stderr) ?? undefined, 30_000, 'the waiting notice');
  const [, approvalId, id] = told;
  expect(waiting.out.stdout).toBe(`Run ${id} started: hello-approval on acme/app.\n`);
  expect((await server.call('GET', `${FLOWS}/approvals/${approvalId}`)).body).toMatchObject({ executionId: id, status: 'pending' });
  expect((await flowgate(['approve', approvalId], owner)).code).toBe(0);
  const r = await waiting.done;
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Run ${id} started: hello-approval on acme/app.`);
  expect(r.stdout).toMatch(/status:\s+Completed \(completed\)/);
  expect(r.stdout).toContain('"greeting":"Hello from Flowgate"');
  expect(r.stderr).toBe(told[0]);
});

test('reject needs a reason; a rejection by an owner fails the run and run --wait exits 1', async () => {
  const before = await runCount();
  const waiting = flowgate(['run', 'hello-approval', '--repo', 'acme/app', '--wait', '--json'], dev);
  const id = await newRun(before);
  const approval = await pendingApproval(id);

  const noReason = await flowgate(['reject', approval.id], owner);
  expect(noReason.code).toBe(2);
  expect(noReason.stderr).toMatch(/^flowgate: --reason: required/);
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body.status).toBe('pending');

  const rejected = await flowgate(['reject', approval.id, '--reason', 'not today'], owner);
  expect(rejected.code).toBe(0);
  expect(rejected.stdout).toBe(`Approval ${approval.id} of run ${id} is rejected (by owner@acme.io: not today).\n`);
  const r = await waiting;
  expect(r.code).toBe(1);
  expect(JSON.parse(r.stdout)).toMatchObject({ id, status: 'Failed', success: false });
});

test('an owner may not approve their own request; cancel stops the run waiting for it', async () => {
  // Two owners: the one who asks cannot approve, the other could.
  await createProject(server, 'acme/two', { owners: ['owner@acme.io', 'second@acme.io'], members: [] });
  const both = await createToken(server, { name: 'owner-two', role: 'member', email: 'owner@acme.io', projects: ['acme/two'] });
  const id = startedId(await flowgate(['run', 'hello-approval', '--repo', 'acme/two'], both))!;
  const approval = await pendingApproval(id);
  const self = await flowgate(['approve', id], both);
  expect(self.code).toBe(1);
  expect(self.stderr).toBe('flowgate: 403 owner@acme.io requested this and may not approve their own request\n');
  expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', approvalsReceived: 0 });

  const r = await flowgate(['cancel', id], both);
  expect(r).toEqual({ code: 0, stdout: `Run ${id} cancelled.\n`, stderr: '' });
  expect((await server.call('GET', `${FLOWS}/${id}`)).body.status).toBe('Cancelled');
  const again = await flowgate(['cancel', id], both);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/^flowgate: 400 Execution already cancelled/);
});

describe('bad input: a clear message, exit 2 for misuse, 1 for a refusal; nothing started', () => {
  let before: number;
  beforeAll(async () => {
    before = await runCount();
  });
  afterAll(async () => {
    expect(await runCount()).toBe(before);
  });

  test.each([
    ['no flow type', ['run', '--repo', 'acme/app'], /"run" needs the flow type first/],
    ['no --repo', ['run', 'hello-approval'], /--repo: required/],
    ['a bad --repo', ['run', 'hello-approval', '--repo', 'nope'], /--repo: "nope" must look like owner\/repo/],
    ['a pair without =', ['run', 'hello-approval', '--repo', 'acme/app', 'greeting'], /"greeting": parameters are key=value/],
    ['a reserved key', ['run', 'hello-approval', '--repo', 'acme/app', 'id=x'], /id is not a parameter: the flow type is the first argument/],
    ['a key given twice', ['run', 'hello-approval', '--repo', 'acme/app', 'a=1', 'a=2'], /a is given twice/],
    ['a number that is not one', ['run', 'request-elevated-privileges', '--repo', 'acme/app', 'username=x', 'durationMinutes=soon'], /^flowgate: durationMinutes: must be a number, got "soon"$/m],
    ['status without id', ['status'], /"status" takes exactly one run id/],
    ['approve with two ids', ['approve', 'a', 'b'], /"approve" takes exactly one run or approval id/],
    ['an empty reason', ['approve', 'a', '--reason', ' '], /--reason: must not be empty/],
    ['cancel without id', ['cancel'], /"cancel" takes exactly one run id/],
  ])('%s', async (_what, args, message) => {
    const r = await flowgate(args, dev);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  test('an unknown flow type is the server\'s 404', async () => {
    const r = await flowgate(['run', 'hello-aproval', '--repo', 'acme/app'], dev);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^flowgate: 404 Flow type "hello-aproval" not found/);
  });

  test('a missing parameter is the server\'s 400, naming it', async () => {
    const r = await flowgate(['run', 'request-elevated-privileges', '--repo', 'acme/app'], dev);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^flowgate: 400 .*payload\.username: required parameter/);
  });

  test('a token without an email cannot approve; it is told why', async () => {
    const r = await flowgate(['approve', '01a20000-0000-7000-8000-000000000000'], ADMIN_TOKEN);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^flowgate: token "[^"]+" is not bound to a person \(no email\), so it cannot approve/);
  });

  test('no token, a bad URL, or no server', async () => {
    const noToken = await flowgate(['status', 'x'], undefined);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^flowgate: FLOWGATE_TOKEN is not set: the status command needs an API token/);
    expect((await flowgate(['cancel', 'x'], dev, { FLOWGATE_URL: 'ftp://x' })).stderr).toMatch(/FLOWGATE_URL "ftp:\/\/x" is not an http\(s\) URL/);
    const closed = await freePort();
    const down = await flowgate(['status', 'x'], dev, { FLOWGATE_URL: `http://127.0.0.1:${closed}` });
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`flowgate: cannot reach Flowgate at http://127.0.0.1:${closed}: ECONNREFUSED (is it running? FLOWGATE_URL sets where)\n`);
  });
});
