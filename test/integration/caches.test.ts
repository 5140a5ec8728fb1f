import { once } from 'node:events';
import pg from 'pg';
import { TtlCache } from '../../src/core/cache/ttl-cache.js';
import { killAllServerProcesses, startServerProcess, type ServerProcess } from '../support/process.js';
import { ADMIN_TOKEN, createProject, eventually, startTestServer, type TestServer } from '../support/server.js';

// Token and project caches across two processes on one database: this one (in-process) and a real
// second server. A long TTL on both, so only the NOTIFY invalidation can make a change seen.
const TIMEOUT = 120_000;
const FLOWS = '/sfp/api/flows';
const LONG_TTL = { FLOWGATE_CACHE_TTL_MS: '600000' };
let a: TestServer;
let b: ServerProcess;
let db: pg.Client;

beforeAll(async () => {
  a = await startTestServer({ env: LONG_TTL });
  b = await startServerProcess({ DATABASE_URL: a.services.config.databaseUrl!, FLOWGATE_EXECUTOR_ID: 'caches-b', ...LONG_TTL });
  db = new pg.Client({ connectionString: a.services.config.databaseUrl });
  await db.connect();
  await createProject(a, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io', 'next@acme.io'] });
  // Both processes listen before anything is cached.
  await eventually(async () => (a.services.cacheInvalidation.live ? true : undefined), 20_000, 'listener of this process up');
}, TIMEOUT);
afterAll(async () => {
  await db?.end();
  try {
    if (b?.running()) await b.stop(30_000);
  } finally {
    await killAllServerProcesses();
    await a?.stop();
  }
}, TIMEOUT);

const whoami = (via: { call: TestServer['call'] }, token: string) => via.call('GET', '/api/v1/whoami', undefined, token);
const token = async (name: string, email: string) => (await a.call('POST', '/api/v1/tokens', { name, role: 'member', email })).body as { id: string; token: string };

test('a revoked token is refused at once on this process, and on the other as soon as the notice arrives', async () => {
  const t = await token('revoked-soon', 'dev@acme.io');
  for (const via of [a, b]) expect((await whoami(via, t.token)).body).toMatchObject({ id: t.id, name: 'revoked-soon' });
  // A change behind the caches' back (no notice) stays unseen on both: both serve the token from memory.
  await db.query(`update api_tokens set name = 'renamed-unseen' where id = $1`, [t.id]);
  for (const via of [a, b]) expect((await whoami(via, t.token)).body.name).toBe('revoked-soon');

  expect((await a.call('DELETE', `/api/v1/tokens/${t.id}`)).status).toBe(204);
  const here = await whoami(a, t.token);
  expect(here.status).toBe(401);
  expect(here.body.message ?? here.body.error).toBeDefined();
  // The other process holds it for 10 minutes unless the notice evicts it.
  await eventually(async () => ((await whoami(b, t.token)).status === 401 ? true : undefined), 20_000, 'revoked token refused on the other process');
}, TIMEOUT);

test('revoking on the other process (or with the CLI) evicts the token here too', async () => {
  const t = await token('revoked-there', 'dev@acme.io');
  expect((await whoami(a, t.token)).status).toBe(200);
  expect((await b.call('DELETE', `/api/v1/tokens/${t.id}`)).status).toBe(204);
  await eventually(async () => ((await whoami(a, t.token)).status === 401 ? true : undefined), 20_000, 'revoked token refused here');
  // Still refused afterwards: nothing re-cached it.
  expect((await whoami(a, t.token)).status).toBe(401);
}, TIMEOUT);

test('a project owner change is seen by the next approval decision on both processes', async () => {
  const owner = await token('owner', 'owner@acme.io');
  const next = await token('next', 'next@acme.io');
  const start = async () => (await a.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'http://127.0.0.1:9/none' } })).body.id as string;
  const suspended = (via: { call: TestServer['call'] }, id: string) => eventually(async () => ((await via.call('GET', `${FLOWS}/${id}`)).body.status === 'Suspended' ? true : undefined), 30_000, `run ${id} suspended`);
  const [onA, onB] = [await start(), await start()];
  await suspended(a, onA);
  await suspended(b, onB);
  // Warm: both processes read the project (and hold it).
  for (const via of [a, b]) expect((await via.call('GET', '/api/v1/projects/acme/app')).body.owners).toEqual(['owner@acme.io']);

  // The owner changes through this process: the next decision here sees it at once.
  expect((await a.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['next@acme.io'], members: ['dev@acme.io', 'owner@acme.io'] })).status).toBe(200);
  const refusedHere = await a.call('POST', `${FLOWS}/approvals/${onA}/approve`, { approver: 'Old', approverEmail: 'owner@acme.io' }, owner.token);
  expect(refusedHere.status).toBe(403);
  expect(refusedHere.body.message).toContain('not an owner');

  // The other process sees it once the notice arrives (a 10-minute TTL would hide it otherwise).
  await eventually(async () => ((await b.call('GET', '/api/v1/projects/acme/app')).body.owners?.[0] === 'next@acme.io' ? true : undefined), 20_000, 'owner change seen on the other process');
  const refusedThere = await b.call('POST', `${FLOWS}/approvals/${onB}/approve`, { approver: 'Old', approverEmail: 'owner@acme.io' }, owner.token);
  expect(refusedThere.status).toBe(403);
  expect(refusedThere.body.message).toContain('not an owner');
  for (const [via, id] of [[a, onA], [b, onB]] as const) {
    const r = await via.call('POST', `${FLOWS}/approvals/${id}/approve`, { approver: 'Next', approverEmail: 'next@acme.io' }, next.token);
    expect({ id, status: r.body.status, body: r.body.status ? undefined : r.body }).toEqual({ id, status: "approved", body: undefined });
  }
}, TIMEOUT);

test('settings changes and deletes made on the other process reach this one: the next start is refused', async () => {
  const start = () => a.call('POST', `${FLOWS}/run`, { payload: { id: 'notifier', repositoryIdentifier: 'acme/gone', text: 'x' } });
  await createProject(a, 'acme/gone', { owners: ['owner@acme.io'] });
  expect((await start()).status).toBe(201);
  expect((await b.call('POST', `${FLOWS}/types/notifier/disable`, { repositoryIdentifier: 'acme/gone' })).status).toBe(200);
  const disabled = await eventually(async () => { const r = await start(); return r.status === 201 ? undefined : r; }, 20_000, 'disable seen here');
  expect(disabled.status).toBe(400);
  expect(JSON.stringify(disabled.body)).toContain('disabled for this project');
  expect((await b.call('POST', `${FLOWS}/types/notifier/enable`, { repositoryIdentifier: 'acme/gone' })).status).toBe(200);
  await eventually(async () => ((await start()).status === 201 ? true : undefined), 20_000, 'enable seen here');
  expect((await b.call('DELETE', '/api/v1/projects/acme/gone')).status).toBe(204);
  await eventually(async () => ((await a.call('GET', '/api/v1/projects/acme/gone')).status === 404 ? true : undefined), 20_000, 'delete seen here');
  expect((await start()).status).toBeGreaterThanOrEqual(400);
}, TIMEOUT);

test('identity links (who a Slack or Azure DevOps user is) are cached, unlinked users too, and every change reaches both processes', async () => {
  const ids = a.services.identities;
  // Nobody linked yet: that answer is kept as well (a click by an unlinked user costs no statement).
  expect(await ids.emailBySlack('U0CACHE')).toBeUndefined();
  expect(await ids.emailByAdo('Ana@Corp.example')).toBeUndefined();
  await db.query(`insert into identities (email, slack_user_id, updated_at) values ('sneaky@acme.io', 'U0CACHE', now())`);
  expect(await ids.emailBySlack('U0CACHE')).toBeUndefined();
  await db.query(`delete from identities where email = 'sneaky@acme.io'`);

  // Linked on the other process: seen here once its notice arrives.
  expect((await b.call('PUT', '/api/v1/identities/ana@acme.io', { slackUserId: 'U0CACHE', adoUniqueName: 'ana@corp.example' })).status).toBe(201);
  await eventually(async () => ((await ids.emailBySlack('U0CACHE')) === 'ana@acme.io' ? true : undefined), 20_000, 'the link seen here');
  expect(await ids.emailByAdo('Ana@Corp.example')).toBe('ana@acme.io');

  // Moved to someone else on this process: seen here at once.
  expect((await a.call('PUT', '/api/v1/identities/ana@acme.io', { adoUniqueName: 'ana@corp.example' })).status).toBe(200);
  expect((await a.call('PUT', '/api/v1/identities/bo@acme.io', { slackUserId: 'U0CACHE' })).status).toBe(201);
  expect(await ids.emailBySlack('U0CACHE')).toBe('bo@acme.io');

  // Deleted on the other process: the link is gone here too.
  expect((await b.call('DELETE', '/api/v1/identities/bo@acme.io')).status).toBe(204);
  await eventually(async () => ((await ids.emailBySlack('U0CACHE')) === undefined ? true : undefined), 20_000, 'the deleted link forgotten here');
  expect(await ids.emailByAdo('ana@corp.example')).toBe('ana@acme.io');
}, TIMEOUT);

test('execution tokens are never cached: each check reads the row, so nothing outlives the run', async () => {
  const run = (await a.call('POST', `${FLOWS}/run`, { payload: { id: 'notifier', repositoryIdentifier: 'acme/app', text: 'x' } })).body.id as string;
  const { secret, id } = await a.services.tokens.createForRun({ id: run, repositoryIdentifier: 'acme/app' }, 1, { name: 'test', door: 'test' });
  // Known (403: an execution token may only report on its run), twice: the second would be a cache hit.
  for (let i = 0; i < 2; i++) expect((await whoami(a, secret)).status).toBe(403);
  await db.query('delete from api_tokens where id = $1', [id]);
  expect((await whoami(a, secret)).status).toBe(401);
}, TIMEOUT);

test('while the listener is down the caches are bypassed; after it reconnects they start afresh', async () => {
  const inv = a.services.cacheInvalidation;
  const t = await token('bypass', 'dev@acme.io');
  const channel = async () => (await a.call('GET', '/api/v1/projects/acme/app')).body.slackChannel;
  const name = async () => (await whoami(a, t.token)).body.name;
  await db.query(`update projects set slack_channel = 'C-before' where repository_identifier = 'acme/app'`);
  await a.call('GET', '/api/v1/projects/acme/app');
  expect(await name()).toBe('bypass');
  // Warm and serving from memory: changes without a notice are not seen.
  await db.query(`update projects set slack_channel = 'C-unseen' where repository_identifier = 'acme/app'`);
  await db.query(`update api_tokens set name = 'unseen' where id = $1`, [t.id]);
  const cachedChannel = await channel();
  expect(cachedChannel).not.toBe('C-unseen');
  expect(await name()).toBe('bypass');

  const down = once(inv, 'down');
  const up = once(inv, 'up');
  const pid = inv.backendPid;
  expect(pid).toBeDefined();
  expect((await db.query('select pg_terminate_backend($1) as ok', [pid])).rows[0].ok).toBe(true);
  await down;
  // Down: every read goes to the database, so even changes nobody announced are seen.
  expect(await channel()).toBe('C-unseen');
  expect(await name()).toBe('unseen');
  await db.query(`update projects set slack_channel = 'C-while-down' where repository_identifier = 'acme/app'`);
  expect(await channel()).toBe('C-while-down');
  expect(inv.live).toBe(false);

  await up;
  expect(inv.backendPid).not.toBe(pid);
  // Back: the first read fills the cache again, and it serves from memory.
  expect(await channel()).toBe('C-while-down');
  await db.query(`update projects set slack_channel = 'C-after' where repository_identifier = 'acme/app'`);
  expect(await channel()).toBe('C-while-down');
  // And notices work again: a write through the other process is seen here.
  expect((await b.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['next@acme.io'], members: ['dev@acme.io'], slackChannel: 'C-noticed' })).status).toBe(200);
  await eventually(async () => ((await channel()) === 'C-noticed' ? true : undefined), 20_000, 'notice after reconnect');
}, TIMEOUT);

/**
 * Counts the statements the database receives whose text matches, over every connection of this
 * process (the ORM's pool, the engine's): the pg driver's own query method, wrapped, not replaced.
 */
async function countingStatements<T>(patterns: Record<string, RegExp>, work: () => Promise<T>): Promise<Record<string, number>> {
  const counts = Object.fromEntries(Object.keys(patterns).map((k) => [k, 0]));
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0];
    const text = typeof q === 'string' ? q : (q as { text?: string } | undefined)?.text ?? '';
    for (const [k, re] of Object.entries(patterns)) if (re.test(text)) counts[k]++;
    return original.apply(this, args);
  };
  try {
    await work();
  } finally {
    proto.query = original;
  }
  return counts;
}

test('a warm intake request costs one statement: the insert (no token or project read)', async () => {
  const N = 20;
  const runOnce = () => a.call('POST', `${FLOWS}/run`, { payload: { id: 'notifier', repositoryIdentifier: 'acme/app', text: 'x' } }, ADMIN_TOKEN);
  expect((await runOnce()).status).toBe(201);
  // The periodic write of uses is paused (and what was pending written), so the window counts requests only.
  await a.services.tokens.stop();
  const counts = await countingStatements({
    tokenRead: /from api_tokens where token_hash/, projectRead: /from projects where repository_identifier/, runInsert: /with i as \(\s*select [\s\S]*? from jsonb_array_elements[\s\S]*insert into runs/, tokenWrite: /update api_tokens/,
  }, async () => {
    for (let i = 0; i < N; i++) expect((await runOnce()).status).toBe(201);
  });
  // Before the caches: 3 per request (token read, project read, insert).
  a.services.tokens.start();
  expect(counts).toEqual({ tokenRead: 0, projectRead: 0, runInsert: N, tokenWrite: 0 });
  expect((counts.tokenRead + counts.projectRead + counts.runInsert) / N).toBe(1);
}, TIMEOUT);

test('uses are recorded in last_used_at in batches: one statement for many tokens', async () => {
  const [t1, t2] = [await token('used-1', 'dev@acme.io'), await token('used-2', 'dev@acme.io')];
  await a.services.tokens.stop();
  const counts = await countingStatements({ tokenWrite: /update api_tokens/ }, async () => {
    for (const t of [t1, t2, t1, t2]) expect((await whoami(a, t.token)).status).toBe(200);
  });
  expect(counts.tokenWrite).toBe(0);
  const flushed = await countingStatements({ tokenWrite: /update api_tokens/ }, () => a.services.tokens.flushUse());
  a.services.tokens.start();
  expect(flushed.tokenWrite).toBe(1);
  const { rows } = await db.query('select name, last_used_at from api_tokens where id = any($1::uuid[]) order by name', [[t1.id, t2.id]]);
  expect(rows.map((r) => ({ name: r.name, used: r.last_used_at instanceof Date }))).toEqual([{ name: 'used-1', used: true }, { name: 'used-2', used: true }]);
}, TIMEOUT);

test('a read that raced with an eviction is returned but not kept', async () => {
  const cache = new TtlCache<string>(a.services.cacheInvalidation, { kind: 'race-test', ttlMs: 600_000 });
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let loads = 0;
  const slow = cache.get('k', async () => { loads++; await gate; return 'old'; });
  // The row changes and the notice arrives while the read is in flight.
  a.services.cacheInvalidation.invalidate('race-test', 'k');
  release();
  expect(await slow).toBe('old');
  expect(await cache.get('k', async () => { loads++; return 'new'; })).toBe('new');
  expect(await cache.get('k', async () => { loads++; return 'newer'; })).toBe('new');
  expect(loads).toBe(2);
  // Concurrent misses of one key share a single read.
  cache.evict('k');
  const both = await Promise.all([1, 2].map(() => cache.get('k', async () => { loads++; return 'shared'; })));
  expect({ both, loads }).toEqual({ both: ['shared', 'shared'], loads: 3 });
});
