import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freshDatabaseUrl } from '../support/database.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const CLI = path.join(root, 'dist/cli/index.js');

let databaseUrl: string;

interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the built CLI against this file's database; never rejects, so exit codes can be asserted. */
function flowgate(...args: string[]): Promise<CliResult> {
  return flowgateWith({}, ...args);
}

function flowgateWith(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { cwd: root, env: { ...process.env, DATABASE_URL: databaseUrl, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const field = (out: string, name: string) => new RegExp(`^\\s*${name}:\\s+(\\S+)`, 'm').exec(out)?.[1];

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  databaseUrl = await freshDatabaseUrl('cli');
});

test('token create prints the secret once and stores only its hash', async () => {
  const r = await flowgate('token', 'create', '--name', 'ci', '--role', 'application', '--email', 'CI@Acme.io', '--projects', 'acme/app,org/project/repo');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const id = field(r.stdout, 'id');
  const secret = field(r.stdout, 'secret');
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  expect(secret).toMatch(/^fg_[A-Za-z0-9_-]{40,}$/);
  expect(field(r.stdout, 'name')).toBe('ci');
  expect(field(r.stdout, 'role')).toBe('application');

  const [row] = await query('select * from api_tokens where id = $1', [id]);
  expect(row).toMatchObject({ name: 'ci', role: 'application', email: 'ci@acme.io', projects: ['acme/app', 'org/project/repo'] });
  expect(row.token_hash).toBe(createHash('sha256').update(secret!).digest('hex'));
  expect(JSON.stringify(row)).not.toContain(secret);

  const audit = await query('select actor, door, action from audit_events where target_id = $1', [id]);
  expect(audit).toEqual([{ actor: 'cli', door: 'cli', action: 'token.created' }]);
});

test('token list shows every token as a table, never a secret', async () => {
  const created = await flowgate('token', 'create', '--name', 'listed', '--role', 'member');
  expect(created.code).toBe(0);
  const id = field(created.stdout, 'id')!;
  const secret = field(created.stdout, 'secret')!;

  const r = await flowgate('token', 'list');
  expect(r.code).toBe(0);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  expect(header.split(/\s+/)).toEqual(['id', 'name', 'role', 'email', 'projects', 'createdAt', 'lastUsedAt']);
  const row = rows.find((l) => l.startsWith(id));
  expect(row?.split(/\s+/)).toEqual([id, 'listed', 'member', '-', '-', expect.stringMatching(/^\d{4}-\d\d-\d\dT/), '-']);
  expect(rows.some((l) => /\sci\s+application\s+ci@acme\.io\s+acme\/app,org\/project\/repo\s/.test(l))).toBe(true);
  expect(r.stdout).not.toContain(secret);
  expect(r.stdout).not.toMatch(/fg_/);
});

test('token revoke deletes the token; it is gone from the list', async () => {
  const id = field((await flowgate('token', 'create', '--name', 'doomed', '--role', 'owner')).stdout, 'id')!;
  expect((await flowgate('token', 'list')).stdout).toContain(id);

  const r = await flowgate('token', 'revoke', id);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Token ${id} revoked`);
  expect((await flowgate('token', 'list')).stdout).not.toContain(id);
  expect(await query('select actor, door from audit_events where target_id = $1 and action = $2', [id, 'token.deleted']))
    .toEqual([{ actor: 'cli', door: 'cli' }]);
});

test('revoking an unknown token fails with a message', async () => {
  const id = randomUUID();
  const r = await flowgate('token', 'revoke', id);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`Token ${id} not found`);
  expect(r.stdout).toBe('');
});

describe('misuse exits with code 2 and names the problem', () => {
  test.each([
    ['a bad role', ['token', 'create', '--name', 'x', '--role', 'admin'], /--role: "admin" is not a role: use one of owner, member, application, viewer/],
    ['a missing --name', ['token', 'create', '--role', 'member'], /--name: required/],
    ['an empty --name', ['token', 'create', '--name', ' ', '--role', 'member'], /--name: required/],
    ['--name without a value', ['token', 'create', '--name', '--role', 'member'], /--name needs a value/],
    ['a bad email', ['token', 'create', '--name', 'x', '--role', 'member', '--email', 'nope'], /--email: must be an email address/],
    ['a bad project', ['token', 'create', '--name', 'x', '--role', 'member', '--projects', 'acme/app,nope'], /--projects: "nope" must look like owner\/repo/],
    ['an unknown flag', ['token', 'create', '--name', 'x', '--role', 'member', '--admin'], /unknown option --admin/],
    ['a revoke without id', ['token', 'revoke'], /exactly one token id/],
    ['a revoke of a non-id', ['token', 'revoke', 'abc'], /token id "abc": must be a token id/],
    ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['an unknown subcommand', ['token', 'rotate'], /unknown subcommand "token rotate"/],
    ['no command', [], /no command given/],
  ])('%s', async (_what, args, message) => {
    const r = await flowgate(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('Usage: flowgate');
    expect(r.stdout).toBe('');
  });

  test('nothing was created by the rejected commands', async () => {
    const names = (await query<{ name: string }>('select name from api_tokens')).map((t) => t.name);
    expect(names).not.toContain('x');
  });
});

test('help prints the usage on stdout and succeeds', async () => {
  for (const args of [['help'], ['--help'], ['token', 'create', '--help']]) {
    const r = await flowgate(...args);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: flowgate');
    expect(r.stdout).toMatch(/token create --name <name> --role <owner\|member\|application\|viewer>/);
    expect(r.stdout).toMatch(/^  run <flowType> --repo <owner\/repo> \[key=value \.\.\.\] \[--wait\]/m);
    for (const command of ['status <runId>', 'approve <runId|approvalId>', 'reject <runId|approvalId> --reason <text>', 'cancel <runId>'])
      expect(r.stdout).toContain(`  ${command}`);
    expect(r.stderr).toBe('');
  }
});

test('a viewer token (read-only) can be created', async () => {
  const r = await flowgate('token', 'create', '--name', 'dashboard', '--role', 'viewer', '--projects', 'acme/app');
  expect(r.code).toBe(0);
  const [row] = await query('select role, projects from api_tokens where id = $1', [field(r.stdout, 'id')]);
  expect(row).toEqual({ role: 'viewer', projects: ['acme/app'] });
});

test('token commands read only the database settings: door settings in the shell do not stop them', async () => {
  // Each of these stops the server at start (a half-set door, an unreadable key, a bad URL).
  const doors = { SLACK_BOT_TOKEN: 'xoxb-1', GITHUB_PRIVATE_KEY_PATH: '/nonexistent/flowgate-key.pem', AZURE_DEVOPS_ORG_URL: 'not a url', FLOWGATE_WEBHOOK_SECRET: 'short' };
  const r = await flowgateWith(doors, 'token', 'list');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^id\s+name\s+role/);
});

test('a bad database setting stops a token command, naming the variable', async () => {
  const r = await flowgateWith({ DATABASE_URL: 'mysql://localhost/flowgate' }, 'token', 'list');
  expect(r.code).toBe(1);
  expect(r.stderr).toBe('flowgate: Invalid configuration:\nflowgate:   - DATABASE_URL: must be a postgres:// or postgresql:// URL\n');
  const port = await flowgateWith({ DATABASE_URL: '', FLOWGATE_EMBEDDED_PG_PORT: 'ninety' }, 'token', 'list');
  expect(port.code).toBe(1);
  expect(port.stderr).toMatch(/FLOWGATE_EMBEDDED_PG_PORT: /);
});
