import fc from 'fast-check';
import { createProject, createToken, startTestServer, type TestServer } from '../support/server.js';

// Property: whatever arrives — any path parameter, query, body or Authorization header — no
// route answers 5xx, every error is in its dialect's envelope, and a refused request writes nothing.
let server: TestServer;
let member: string;
let app: string;
const TABLES = ['runs', 'step_runs', 'approvals', 'projects', 'api_tokens', 'identities', 'run_locks', 'log_lines'];

beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/app');
  member = await createToken(server, { name: 'm', role: 'member', email: 'm@acme.io' });
  app = await createToken(server, { name: 'a', role: 'application' });
});
afterAll(async () => { await server?.stop(); });

async function counts(): Promise<string> {
  const conn = server.services.orm.em.getConnection();
  const rows = await Promise.all(TABLES.map((t) => conn.execute<{ n: string }[]>(`select count(*)::text as n from ${t}`)));
  return rows.map((r, i) => `${TABLES[i]}=${r[0].n}`).join(' ');
}

const nasty = fc.oneof(
  fc.string({ maxLength: 40 }), fc.constantFrom('', ' ', '..', '%', '%00', '../../etc/passwd', "' or 1=1 --", 'null', '-1', '1e309', 'run-', '00000000-0000-0000-0000-000000000000', 'ä/ö', 'a'.repeat(600)),
  fc.uuid(), fc.integer().map(String),
);
const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.object({ maxDepth: 2 }), fc.constantFrom({ payload: null }, { payload: { id: 1 } }, { repositoryIdentifier: 'acme/app' }, { status: 'completed' }, { result: [] }));
const rawBody = fc.oneof(jsonish.map((v) => JSON.stringify(v)), fc.string({ maxLength: 80 }), fc.constantFrom('{', '[1,', '{"a":', '\u0000', 'null'));

interface Op { method: string; path: string; dialect: 'sfp' | 'api' }

test('no 5xx, dialect envelopes, nothing written on refusal — over every route in /openapi.json', async () => {
  const doc = (await server.call('GET', '/openapi.json', undefined, null)).body;
  const ops: Op[] = Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({
    method: method.toUpperCase(), path, dialect: path.startsWith('/sfp/') ? 'sfp' as const : 'api' as const,
  })));
  expect(ops.length).toBeGreaterThan(40);
  const tokens = [null, 'garbage', `${'x'.repeat(5000)}`, member, app, undefined] as const;
  let cases = 0;
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...ops), fc.array(nasty, { minLength: 3, maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 12 }), nasty, { maxKeys: 4 }),
    rawBody, fc.constantFrom(...tokens), fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', ''),
    async (op, params, query, body, token, contentType) => {
      cases++;
      let i = 0;
      const path = op.path.replace(/\{\w+\}/g, () => encodeURIComponent(params[i++ % params.length]));
      const qs = new URLSearchParams(query).toString();
      const headers: Record<string, string> = {};
      const bearer = token === undefined ? 'test-admin-token-0123456789abcdef' : token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      if (contentType) headers['content-type'] = contentType;
      const before = await counts();
      const url = new URL(`${server.url}${path}${qs ? `?${qs}` : ''}`);
      // `..` in a parameter can move the request out of its dialect's prefix: judge by where it went.
      const dialect = url.pathname.startsWith('/sfp/api/flows') ? 'sfp' : url.pathname.startsWith('/v1/workflow-runs') ? 'workflow-runs'
        : url.pathname === '/api/v1/flow-runs' || url.pathname.startsWith('/api/v1/flow-runs/') ? 'flow-runs' : 'api';
      const res = await fetch(url, { method: op.method, headers, body: op.method === 'GET' || op.method === 'DELETE' && !body ? undefined : body });
      const text = await res.text();
      expect({ op: `${op.method} ${path}`, status: res.status < 500 }).toEqual({ op: `${op.method} ${path}`, status: true });
      if (res.status >= 400) {
        const parsed = JSON.parse(text);
        if (dialect === 'sfp') expect(parsed).toMatchObject({ statusCode: res.status, error: expect.any(String), message: expect.anything() });
        else if (dialect === 'workflow-runs') expect(parsed).toEqual({ error: { code: expect.any(String), message: expect.any(String), details: expect.any(Array) } });
        else if (dialect === 'flow-runs') {
          expect(parsed).toEqual({ detail: expect.anything() });
          if (typeof parsed.detail !== 'string') expect(parsed.detail).toEqual(expect.arrayContaining([{ loc: expect.any(Array), msg: expect.any(String), type: expect.any(String) }]));
        }
        else expect(parsed).toMatchObject({ error: expect.any(String) });
        expect(await counts()).toBe(before);
      }
    },
  ), { numRuns: 1200, interruptAfterTimeLimit: 240_000 });
  expect(cases).toBeGreaterThanOrEqual(1000);
}, 300_000);
