import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLogLine } from '../../src/core/logs/log-format.js';
import { ADMIN_TOKEN, createProject, startTestServer, type TestServer } from '../support/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const CLI = path.join(root, 'dist/cli/index.js');
const FLOWS = '/sfp/api/flows';

let server: TestServer;

interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the built CLI against the in-process server; never rejects, so exit codes can be asserted. */
function flowgate(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const childEnv: Record<string, string | undefined> = { ...process.env, FLOWGATE_URL: server.url, FLOWGATE_TOKEN: ADMIN_TOKEN, DATABASE_URL: undefined, ...env };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { cwd: root, env: childEnv as NodeJS.ProcessEnv, timeout: 45_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const start = async (id: string) => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id, repositoryIdentifier: 'acme/app' } });
  expect(r.status).toBe(201);
  return r.body.id as string;
};

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  server = await startTestServer();
  await createProject(server, 'acme/app');
});
afterAll(async () => {
  await server?.stop();
});

test('logs --follow on a live run prints every line once, in order, and exits 0 when the run has finished', async () => {
  const id = await start('chatty');
  const r = await flowgate(['logs', id, '--follow']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const { body } = await server.call('GET', `${FLOWS}/${id}/logs`);
  expect(body.status).toBe('Completed');
  expect(body.logs.map((l: any) => l.message)).toEqual(expect.arrayContaining(['solo line 1', 'solo line 6', 'Run completed']));
  expect(r.stdout).toBe(body.logs.map((l: any) => `${formatLogLine(l)}\n`).join(''));

  // Without --follow, a finished run prints the same once.
  expect(await flowgate(['logs', id])).toEqual({ code: 0, stdout: r.stdout, stderr: '' });
});

test('logs --follow on an orchestrator marks the lines of each child', async () => {
  const id = await start('chatty-orchestrator');
  const r = await flowgate(['logs', id, '-f']);
  expect(r.code).toBe(0);
  const { body } = await server.call('GET', `${FLOWS}/${id}/logs`);
  const printed = r.stdout.trimEnd().split('\n');
  const expected = [
    ...body.logs.map((l: any) => formatLogLine(l)),
    ...body.children.flatMap((c: any) => c.logs.map((l: any) => `{chatty ${c.id}} ${formatLogLine(l)}`)),
  ];
  expect([...printed].sort()).toEqual([...expected].sort());
  for (const c of body.children) {
    const own = printed.filter((p) => p.startsWith(`{chatty ${c.id}} `));
    expect(own).toEqual(c.logs.map((l: any) => `{chatty ${c.id}} ${formatLogLine(l)}`));
  }
});

test('misuse exits 2; a refusal from the server exits 1 with its message', async () => {
  const noToken = await flowgate(['logs', '01a20000-0000-7000-8000-000000000000'], { FLOWGATE_TOKEN: undefined });
  expect(noToken.code).toBe(2);
  expect(noToken.stderr).toMatch(/^flowgate: FLOWGATE_TOKEN is not set/);
  expect((await flowgate(['logs', 'x'], { FLOWGATE_URL: 'ftp://nowhere' })).code).toBe(2);
  expect((await flowgate(['logs'])).code).toBe(2);
  expect((await flowgate(['logs', 'a', 'b'])).stderr).toMatch(/exactly one run id/);

  const unknown = await flowgate(['logs', '01a20000-0000-7000-8000-000000000000']);
  expect(unknown).toMatchObject({ code: 1, stdout: '' });
  expect(unknown.stderr).toBe('flowgate: 404 Execution 01a20000-0000-7000-8000-000000000000 not found\n');
  const badToken = await flowgate(['logs', '01a20000-0000-7000-8000-000000000000'], { FLOWGATE_TOKEN: 'fg_wrong' });
  expect(badToken.code).toBe(1);
  expect(badToken.stderr).toMatch(/^flowgate: 401 /);
});
