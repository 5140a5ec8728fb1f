import Router from '@koa/router';
import Koa from 'koa';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { ConfigError, loadConfig } from '../../src/config.js';
import { accountsDialect } from '../../src/http/accounts/index.js';
import { mountDialect } from '../../src/http/mount.js';
import { ADMIN_TOKEN, createProject, createToken, startTestServer, type TestServer } from '../support/server.js';

// Accounts, logins (JWT sessions) and the role table: which role reaches which route family.
const SECRET = 'current-secret-0123456789abcdef-0123456789';
const PREVIOUS = 'previous-secret-0123456789abcdef-012345678';
const PASSWORD = 'correct horse battery';
let server: TestServer;
let admin: string;

const enc = (s: string) => new TextEncoder().encode(s);
const login = (username: string, password = PASSWORD) => server.call('POST', '/auth/login', { username, password }, null);
const register = (body: Record<string, unknown>, token: string | null = admin) => server.call('POST', '/auth/register', { password: PASSWORD, ...body }, token);
const q = (text: string, params: unknown[] = []) => server.services.orm.em.getConnection().execute(text, params);
const clearFailures = () => q('delete from login_failures');

async function account(username: string, role: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await register({ username, role, ...extra });
  if (r.status !== 201) throw new Error(`registering ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  const l = await login(username);
  if (l.status !== 200) throw new Error(`logging in ${username}: ${l.status} ${JSON.stringify(l.body)}`);
  return l.body.token;
}

/** A token with the claims of `jwt` but signed otherwise (alg, key, expiry). */
async function resign(jwt: string, key: string, opts: { alg?: string; exp?: number } = {}) {
  const c = decodeJwt(jwt);
  return new SignJWT({ username: c.username, role: c.role })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
    .setIssuer('flowgate').setAudience('flowgate').setSubject(c.sub!).setJti(c.jti!).setIssuedAt(c.iat!).setExpirationTime(opts.exp ?? c.exp!)
    .sign(enc(key));
}

beforeAll(async () => {
  // (An encryption key so the credentials row of the role table can store.)
  server = await startTestServer({ env: { FLOWGATE_JWT_SECRET: SECRET, FLOWGATE_JWT_SECRET_PREVIOUS: PREVIOUS, FLOWGATE_ENCRYPTION_KEY: 'ab'.repeat(32) } });
  await createProject(server, 'acme/app');
  await createProject(server, 'other/app');
  const first = await register({ username: 'root', role: 'admin', email: 'Root@Acme.io' }, ADMIN_TOKEN);
  expect(first.status).toBe(201);
  admin = (await login('root')).body.token;
});
afterAll(async () => { await server?.stop(); });
beforeEach(clearFailures);

describe('register', () => {
  test('without a token is 401 saying how to make the first admin; an owner token makes it; never open', async () => {
    const none = await server.call('POST', '/auth/register', { username: 'eve', password: PASSWORD, role: 'admin' }, null);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ code: 'authentication_required' });
    expect(none.body.error).toMatch(/owner token.*FLOWGATE_ADMIN_TOKEN/);
    expect((await server.call('POST', '/auth/register', { username: 'eve', password: PASSWORD }, 'fg_wrong')).status).toBe(401);
    const me = await server.call('GET', '/auth/me', undefined, admin);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: 'root', role: 'admin', email: 'root@acme.io', namespaces: null, disabled: false, lastLoginAt: expect.any(String) });
  });

  test('an account gets the defaults, a Location and is listed; bad input is 400, taken names 409, unknown namespaces 422', async () => {
    const r = await register({ username: 'Vera.V' });
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe('/auth/users/vera.v');
    expect(r.body).toEqual({ id: expect.any(String), username: 'vera.v', role: 'viewer', email: null, namespaces: null, disabled: false, createdAt: expect.any(String), updatedAt: expect.any(String), lastLoginAt: null });
    expect(JSON.stringify(r.body)).not.toMatch(/scrypt|password/);
    const [row] = await q('select password_hash from accounts where username = ?', ['vera.v']);
    expect(row.password_hash).toMatch(/^scrypt\$15\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);

    const short = await register({ username: 'shorty', password: 'too-short' });
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ code: 'bad_request', details: [expect.objectContaining({ field: 'password', location: 'body' })] });
    expect((await register({ username: 'samename12345', password: 'SameName12345' })).body.details[0]).toMatchObject({ field: 'password', message: 'must not be the username' });
    expect((await register({ username: 'long', password: 'x'.repeat(257) })).status).toBe(400);
    expect((await register({ username: 'rolly', role: 'superuser' })).body.details[0].field).toBe('role');
    expect((await register({ username: 'x' })).body.details[0].field).toBe('username');
    expect((await register({ username: 'VERA.v' })).status).toBe(409);
    expect((await register({ username: 'emailer', email: 'root@acme.io' })).status).toBe(409);
    const ns = await register({ username: 'nowhere', namespaces: ['no.such'] });
    expect(ns.status).toBe(422);
    expect(ns.body.code).toBe('validation_failed');
  });

  test('only admins register, within their namespaces (and an owner token within its projects)', async () => {
    const editor = await account('ed.reg', 'editor');
    expect((await register({ username: 'by-editor' }, editor)).status).toBe(403);
    const member = await createToken(server, { name: 'member-reg', role: 'member' });
    expect((await register({ username: 'by-member' }, member)).status).toBe(403);

    const scoped = await account('scoped.admin', 'admin', { namespaces: ['acme.app'] });
    expect((await register({ username: 'in-acme', role: 'editor', namespaces: ['acme.app'] }, scoped)).status).toBe(201);
    expect((await register({ username: 'in-other', namespaces: ['other.app'] }, scoped)).status).toBe(403);
    expect((await register({ username: 'everywhere' }, scoped)).status).toBe(403);
    const users = await server.call('GET', '/auth/users', undefined, scoped);
    expect(users.body.map((u: any) => u.username).sort()).toEqual(['in-acme', 'scoped.admin']);
    expect((await server.call('PATCH', '/auth/users/root', { email: 'x@acme.io' }, scoped)).status).toBe(404);

    const scopedOwner = await createToken(server, { name: 'owner-acme', role: 'owner', projects: ['acme/app'] });
    expect((await register({ username: 'tok-other', namespaces: ['other.app'] }, scopedOwner)).status).toBe(403);
    expect((await register({ username: 'tok-acme', role: 'admin', namespaces: ['acme.app'] }, scopedOwner)).status).toBe(201);
  });
});

describe('login', () => {
  test('a JWT (HS256, flowgate claims) that is a session row and works on every dialect', async () => {
    await register({ username: 'lena', role: 'executor', email: 'lena@acme.io', namespaces: ['acme.app'] });
    const r = await login('LENA');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ token: expect.any(String), expiresAt: expect.any(String), user: { id: expect.any(String), username: 'lena', role: 'executor', email: 'lena@acme.io', namespaces: ['acme.app'] } });
    expect(decodeProtectedHeader(r.body.token)).toMatchObject({ alg: 'HS256' });
    const c = decodeJwt(r.body.token);
    expect(c).toMatchObject({ iss: 'flowgate', aud: 'flowgate', sub: r.body.user.id, username: 'lena', role: 'executor', jti: expect.any(String) });
    expect(c.exp! - c.iat!).toBe(12 * 3600);
    expect(new Date(r.body.expiresAt).getTime()).toBe(c.exp! * 1000);
    expect(await q('select 1 from auth_sessions where id = ?', [c.jti])).toHaveLength(1);
    // The core sees a member of the account's namespaces' projects.
    const who = await server.call('GET', '/api/v1/whoami', undefined, r.body.token);
    expect(who.body).toMatchObject({ name: 'lena', role: 'member', email: 'lena@acme.io', projects: ['acme/app'] });
    expect((await server.call('GET', '/sfp/api/flows/runs?repositoryIdentifier=acme/app', undefined, r.body.token)).status).toBe(200);
  });

  test('unknown name, wrong password and disabled account are one answer; failures are counted, not audited', async () => {
    await register({ username: 'dora' });
    await server.call('PATCH', '/auth/users/dora', { disabled: true }, admin);
    const answers = await Promise.all([login('nobody-here'), login('root', 'wrong password!'), login('dora')]);
    for (const a of answers) expect({ status: a.status, body: a.body }).toEqual({ status: 401, body: { error: 'invalid username or password', code: 'authentication_required' } });
    expect(await q(`select 1 from audit_events where action like 'auth.%' and details::text like '%wrong password%'`)).toHaveLength(0);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/flowgate_logins_total\{result="failure"\} [1-9]/);
    expect(metrics).toMatch(/flowgate_logins_total\{result="success"\} [1-9]/);
  });

  test('5 failures per username in 15 minutes: 429 with Retry-After, even with the right password; audited once; success clears', async () => {
    await register({ username: 'tess' });
    for (let i = 0; i < 4; i++) expect((await login('tess', 'wrong password!')).status).toBe(401);
    expect((await login('tess')).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await login('tess', 'wrong password!')).status).toBe(401);
    const refused = await login('tess');
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('rate_limited');
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(800);
    expect(wait).toBeLessThanOrEqual(900);
    expect((await login('tess')).status).toBe(429);
    // Another username from the same address is not held up by tess's count.
    expect((await login('root')).status).toBe(200);
    expect(await q(`select target_id from audit_events where action = 'auth.throttled'`)).toEqual([{ target_id: 'tess' }]);
  });

  test('20 failures per address in 15 minutes: 429 for every username from it', async () => {
    for (let i = 0; i < 20; i++) expect((await login(`ghost-${i}`, 'wrong password!')).status).toBe(401);
    const refused = await login('root');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(800);
    await clearFailures();
    expect((await login('root')).status).toBe(200);
  });

  test('without FLOWGATE_TRUST_PROXY a client cannot spread its failures over made-up X-Forwarded-For addresses', async () => {
    const forged = (i: number) => fetch(`${server.url}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` }, body: JSON.stringify({ username: `ghost-${i}`, password: 'wrong password!' }),
    });
    for (let i = 0; i < 20; i++) expect((await forged(i)).status).toBe(401);
    expect((await forged(99)).status).toBe(429);
    await clearFailures();
  });
});

describe('sessions', () => {
  test('refusals name an account as an account', async () => {
    const token = await account('scoped.ed', 'editor', { namespaces: ['acme.app'] });
    const r = await server.call('GET', '/sfp/api/flows/types/status?repositoryIdentifier=other/app', undefined, token);
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('Account "scoped.ed" is not allowed to access project other/app');
  });

  test('logout ends the session (204); a Flowgate token has none', async () => {
    const token = await account('leo', 'viewer');
    const other = (await login('leo')).body.token;
    expect((await server.call('POST', '/auth/logout', undefined, token)).status).toBe(204);
    expect((await server.call('GET', '/auth/me', undefined, token)).status).toBe(401);
    expect((await server.call('GET', '/api/v1/flows', undefined, token)).status).toBe(401);
    expect((await server.call('GET', '/auth/me', undefined, other)).status).toBe(200);
    expect((await server.call('POST', '/auth/logout', undefined, ADMIN_TOKEN)).status).toBe(403);
    expect((await server.call('GET', '/auth/me', undefined, ADMIN_TOKEN)).status).toBe(403);
  });

  test('a password, role or namespace change, or disabling, ends every session; an email change does not', async () => {
    const a = await account('pat', 'editor', { namespaces: ['acme.app'] });
    const b = (await login('pat')).body.token;
    const email = await server.call('PATCH', '/auth/users/pat', { email: 'Pat@Acme.io' }, admin);
    expect(email.body).toMatchObject({ email: 'pat@acme.io' });
    expect((await server.call('GET', '/api/v1/whoami', undefined, a)).body.email).toBe('pat@acme.io');
    const changed = await server.call('PATCH', '/auth/users/pat', { password: 'another long password' }, admin);
    expect(changed.status).toBe(200);
    for (const t of [a, b]) expect((await server.call('GET', '/auth/me', undefined, t)).status).toBe(401);
    expect((await login('pat')).status).toBe(401);
    const c = (await login('pat', 'another long password')).body.token;
    await server.call('PATCH', '/auth/users/pat', { role: 'executor' }, admin);
    expect((await server.call('GET', '/auth/me', undefined, c)).status).toBe(401);
    const d = (await login('pat', 'another long password')).body.token;
    await server.call('PATCH', '/auth/users/pat', { namespaces: ['acme.app', 'other.app'] }, admin);
    expect((await server.call('GET', '/auth/me', undefined, d)).status).toBe(401);
    const e = (await login('pat', 'another long password')).body.token;
    await server.call('PATCH', '/auth/users/pat', { disabled: true }, admin);
    expect((await server.call('GET', '/auth/me', undefined, e)).status).toBe(401);
    expect((await server.call('PATCH', '/auth/users/pat', { password: 'pat' }, admin)).status).toBe(400);
    expect((await server.call('PATCH', '/auth/users/nobody', { disabled: true }, admin)).status).toBe(404);
  });

  test('expired, other-alg and unknown-key tokens are 401; the previous secret still verifies', async () => {
    const token = await account('kim', 'viewer');
    const ok = (t: string) => server.call('GET', '/auth/me', undefined, t);
    expect((await ok(await resign(token, SECRET, { exp: Math.floor(Date.now() / 1000) - 5 }))).status).toBe(401);
    expect((await ok(await resign(token, SECRET, { alg: 'HS512' }))).status).toBe(401);
    const [h, p] = token.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    expect((await ok(none)).status).toBe(401);
    expect((await ok(`${h}.${p}.${'A'.repeat(43)}`)).status).toBe(401);
    expect((await ok(await resign(token, 'some-other-secret-0123456789abcdef-0123'))).status).toBe(401);
    const previous = await ok(await resign(token, PREVIOUS));
    expect(previous.status).toBe(200);
    expect(previous.body.username).toBe('kim');
    const bad = await ok(await resign(token, SECRET, { exp: Math.floor(Date.now() / 1000) - 5 }));
    expect(bad.body).toEqual({ error: 'Invalid or revoked token', code: 'authentication_required' });
  });
});

describe('users', () => {
  test('admins list, change and delete accounts; the last unscoped admin stays (409); others are 403', async () => {
    const viewer = await account('val', 'viewer');
    expect((await server.call('GET', '/auth/users', undefined, viewer)).status).toBe(403);
    expect((await server.call('DELETE', '/auth/users/val', undefined, viewer)).status).toBe(403);
    const list = await server.call('GET', '/auth/users', undefined, admin);
    expect(list.status).toBe(200);
    expect(list.body.map((u: any) => u.username)).toEqual([...list.body.map((u: any) => u.username)].sort());

    for (const change of [{ role: 'editor' }, { disabled: true }, { namespaces: ['acme.app'] }]) {
      const r = await server.call('PATCH', '/auth/users/root', change, admin);
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('conflict');
    }
    expect((await server.call('DELETE', '/auth/users/root', undefined, ADMIN_TOKEN)).status).toBe(409);
    await account('second.admin', 'admin');
    expect((await server.call('DELETE', '/auth/users/val', undefined, admin)).status).toBe(204);
    expect((await server.call('DELETE', '/auth/users/val', undefined, admin)).status).toBe(404);
    expect((await server.call('GET', '/auth/me', undefined, viewer)).status).toBe(401);
    const actions = (await q(`select action from audit_events where action like 'user.%' or action like 'auth.%'`)).map((r: any) => r.action);
    expect(new Set(actions)).toEqual(new Set(['user.registered', 'user.updated', 'user.deleted', 'auth.login', 'auth.logout', 'auth.throttled']));
    const all = JSON.stringify(await q(`select details from audit_events where action like 'user.%' or action like 'auth.%'`));
    expect(all).not.toMatch(/correct horse|another long password|scrypt/);
  });

  test('without FLOWGATE_JWT_SECRET every /auth route is 503 naming it', async () => {
    const app = new Koa();
    const router = new Router();
    mountDialect(router, accountsDialect({ ...server.services, accounts: undefined, logins: undefined }), server.services.tokens, server.services.log);
    app.use(router.routes());
    const http = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => http.once('listening', resolve));
    try {
      const { port } = http.address() as { port: number };
      for (const [method, path] of [['POST', '/auth/login'], ['POST', '/auth/register'], ['GET', '/auth/me']]) {
        const r = await fetch(`http://127.0.0.1:${port}${path}`, { method });
        expect(r.status).toBe(503);
        expect(await r.json()).toMatchObject({ code: 'service_unavailable', error: expect.stringContaining('FLOWGATE_JWT_SECRET') });
      }
    } finally {
      http.close();
    }
  });
});

describe('settings', () => {
  const problems = (env: Record<string, string>) => { try { loadConfig(env); return []; } catch (err) { return (err as ConfigError).problems; } };
  test('FLOWGATE_JWT_SECRET ≥ 32 bytes, FLOWGATE_JWT_TTL 5m–7d (12h), the previous secret only beside a current one', () => {
    expect(loadConfig({ FLOWGATE_JWT_SECRET: SECRET }).jwt).toEqual({ secret: SECRET, previousSecret: undefined, ttlSeconds: 43_200 });
    expect(loadConfig({ FLOWGATE_JWT_SECRET: SECRET, FLOWGATE_JWT_TTL: '30m' }).jwt?.ttlSeconds).toBe(1800);
    expect(loadConfig({}).jwt).toBeUndefined();
    expect(problems({ FLOWGATE_JWT_SECRET: 'short' })).toEqual(['FLOWGATE_JWT_SECRET: must be at least 32 bytes']);
    for (const ttl of ['4m', '8d', '12', 'soon']) expect(problems({ FLOWGATE_JWT_SECRET: SECRET, FLOWGATE_JWT_TTL: ttl })).toEqual([expect.stringMatching(/^FLOWGATE_JWT_TTL: /)]);
    expect(problems({ FLOWGATE_JWT_SECRET_PREVIOUS: PREVIOUS })).toEqual([expect.stringMatching(/^FLOWGATE_JWT_SECRET_PREVIOUS: set only beside FLOWGATE_JWT_SECRET/)]);
  });
});

describe('role table', () => {
  const FLOW = (name: string) => `name: ${name}\nnamespace: acme.app\ntasks:\n  - { name: say, type: util.log, properties: { message: hi } }\n`;
  type Caller = 'viewer' | 'executor' | 'editor' | 'admin' | 'owner token' | 'member token' | 'viewer token';
  const CALLERS: Caller[] = ['viewer', 'executor', 'editor', 'admin', 'owner token', 'member token', 'viewer token'];
  let n = 0;
  const unique = (s: string) => `${s}-${++n}`;
  let flowId: string;

  /**
   * One route of each family and who may use it (the others get 403). Families not mounted yet are
   * skipped; `passesAuth`: only the role check is asserted (not 401/403), not the route's own outcome.
   */
  const ROWS: { name: string; allowed: Caller[]; passesAuth?: true; call: (t: string) => ReturnType<TestServer['call']> }[] = [
    { name: 'GET /api/v1/flows', allowed: CALLERS, call: (t) => server.call('GET', '/api/v1/flows', undefined, t) },
    { name: 'POST /api/v1/flows', allowed: ['editor', 'admin', 'owner token'], call: (t) => server.call('POST', '/api/v1/flows', { yamlContent: FLOW(unique('made')) }, t) },
    { name: 'GET /api/v1/executions', allowed: CALLERS, call: (t) => server.call('GET', '/api/v1/executions', undefined, t) },
    { name: 'POST /api/v1/flows/{id}/execute', allowed: ['executor', 'editor', 'admin', 'owner token', 'member token'], call: (t) => server.call('POST', `/api/v1/flows/${flowId}/execute`, { inputs: {} }, t) },
    { name: 'POST /api/v1/triggers', allowed: ['editor', 'admin', 'owner token'], call: (t) => server.call('POST', '/api/v1/triggers', { flowId, type: 'webhook', name: unique('hook') }, t) },
    { name: 'POST /api/v1/credentials', allowed: ['editor', 'admin', 'owner token'], passesAuth: true, call: (t) => server.call('POST', '/api/v1/credentials', { name: unique('CRED').replace(/-/g, '_'), value: 'v4lue-secret', namespace: 'acme.app' }, t) },
    { name: 'PUT /api/v1/kv/{ns}/{key}', allowed: ['editor', 'admin', 'owner token'], passesAuth: true, call: (t) => server.call('PUT', `/api/v1/kv/acme.app/${unique('key')}`, { value: 1 }, t) },
    { name: 'GET /sfp/api/flows/runs', allowed: CALLERS, call: (t) => server.call('GET', '/sfp/api/flows/runs?repositoryIdentifier=acme/app', undefined, t) },
    { name: 'POST /sfp/api/flows/run', allowed: ['executor', 'editor', 'admin', 'owner token', 'member token'], call: (t) => server.call('POST', '/sfp/api/flows/run', { payload: { id: 'acme.app:table', repositoryIdentifier: 'acme/app' } }, t) },
    { name: 'POST /api/v1/tokens', allowed: ['executor', 'editor', 'admin', 'owner token', 'member token'], call: (t) => server.call('POST', '/api/v1/tokens', { name: unique('tok'), role: 'viewer' }, t) },
  ];

  test('each role against one route of each family', async () => {
    const made = await server.call('POST', '/api/v1/flows', { yamlContent: FLOW('table') });
    expect(made.status).toBe(201);
    flowId = made.body.id;
    const tokens: Record<Caller, string> = {
      viewer: await account('rt.viewer', 'viewer'), executor: await account('rt.executor', 'executor', { email: 'exec@acme.io' }),
      editor: await account('rt.editor', 'editor', { email: 'editor@acme.io' }), admin: await account('rt.admin', 'admin', { email: 'owner@acme.io' }),
      'owner token': ADMIN_TOKEN, 'member token': await createToken(server, { name: 'rt-member', role: 'member' }), 'viewer token': await createToken(server, { name: 'rt-viewer', role: 'viewer' }),
    };
    const got: Record<string, Record<string, string>> = {};
    const want: Record<string, Record<string, string>> = {};
    for (const row of ROWS) {
      const probe = await row.call(ADMIN_TOKEN);
      if (probe.status === 404 && /No route/.test(JSON.stringify(probe.body))) continue; // family not mounted
      got[row.name] = {};
      want[row.name] = {};
      for (const caller of CALLERS) {
        const r = await row.call(tokens[caller]);
        got[row.name][caller] = r.status === 403 ? 'forbidden' : r.status < 300 || (row.passesAuth && r.status !== 401) ? 'allowed' : `${r.status} ${JSON.stringify(r.body)}`;
        want[row.name][caller] = row.allowed.includes(caller) ? 'allowed' : 'forbidden';
      }
    }
    expect(got).toEqual(want);
    expect(Object.keys(got)).toEqual(expect.arrayContaining(['POST /api/v1/flows', 'POST /api/v1/triggers', 'POST /api/v1/tokens']));
  });
});
