import { commentPayload, deliver } from '../fakes/github.js';
import { parseCommand } from '../../src/cli/args.js';
import { startWithAllDoors, type AllDoors } from '../support/all-doors.js';
import { ADMIN_TOKEN, createProject, createToken, eventually, waitForRun, type TestServer } from '../support/server.js';

// Tokens, roles and identities stay inside their scope: a token never creates a token beyond its own
// role or projects, a project-scoped owner manages only its own tokens and the identities of people
// of its projects, a viewer only reads. Every refusal leaves nothing changed and is audited; requests
// without valid credentials are counted in /metrics instead of written to the audit table.
const FLOWS = '/sfp/api/flows';
let doors: AllDoors;
let server: TestServer;
const tokens: Record<string, string> = {};
const ids: Record<string, string> = {};

beforeAll(async () => {
  doors = await startWithAllDoors();
  server = doors.server;
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
  await createProject(server, 'acme/other', { owners: ['boss@acme.io'], members: [] });
  tokens.scoped = await createToken(server, { name: 'scoped-owner', role: 'owner', email: 'owner@acme.io', projects: ['acme/app'] });
  tokens.member = await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] });
  tokens.viewer = await createToken(server, { name: 'viewer', role: 'viewer', projects: ['acme/app'] });
  tokens.auditor = await createToken(server, { name: 'auditor', role: 'viewer' });
  for (const t of (await server.call('GET', '/api/v1/tokens')).body.tokens) ids[t.name] = t.id;
}, 60_000);
afterAll(async () => { await doors?.stop(); });

const query = <T = any>(text: string, params: unknown[] = []) => server.services.orm.em.getConnection().execute<T[]>(text, params);
const tokenTable = () => query('select id, name, role, email, projects, created_by from api_tokens order by id');
const directory = () => query('select email, github_login, slack_user_id, ado_unique_name, updated_at from identities order by email');
const count = async (table: string) => Number((await query<{ n: string }>(`select count(*)::text as n from ${table}`))[0].n);
const refusalCount = async () => Number((await query<{ n: string }>(`select count(*)::text as n from audit_events where action = 'request.refused'`))[0].n);
const refusals = async (actor: string) => (await query(`select details from audit_events where action = 'request.refused' and actor = ?`, [actor])).map((r) => r.details);

describe('tokens', () => {
  test('a scoped owner may not mint an unscoped token or one for another project: 403, nothing written, audited', async () => {
    const before = await tokenTable();
    const unscoped = await server.call('POST', '/api/v1/tokens', { name: 'escalate', role: 'owner' }, tokens.scoped);
    expect(unscoped.status).toBe(403);
    expect(unscoped.body.error).toMatch(/scoped-owner.*limited to projects acme\/app: it may not create a token for every project/);
    const elsewhere = await server.call('POST', '/api/v1/tokens', { name: 'sideways', role: 'viewer', projects: ['acme/app', 'acme/other'] }, tokens.scoped);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error).toMatch(/project\(s\) acme\/other: outside its own \(acme\/app\)/);
    // A token acts as its email: a scoped owner may not mint one for someone outside its projects.
    const impersonate = await server.call('POST', '/api/v1/tokens', { name: 'as-boss', role: 'member', email: 'boss@acme.io', projects: ['acme/app'] }, tokens.scoped);
    expect(impersonate.status).toBe(403);
    expect(impersonate.body.error).toMatch(/boss@acme\.io is not an owner or member of any project of token "scoped-owner"/);
    expect(await tokenTable()).toEqual(before);
    const audited = await refusals('owner@acme.io');
    expect(audited.filter((d) => d.status === 403 && d.path === '/api/v1/tokens').map((d) => d.reason)).toEqual(
      expect.arrayContaining([unscoped.body.error, elsewhere.body.error, impersonate.body.error]));
  });

  test('a token mints no role above its own; within it, it may', async () => {
    const before = await tokenTable();
    const higher = await server.call('POST', '/api/v1/tokens', { name: 'up', role: 'owner', projects: ['acme/app'] }, tokens.member);
    expect(higher.status).toBe(403);
    expect(higher.body.error).toBe('Token "dev" (member) may not create an owner token: a token creates only tokens of a role at most its own (owner > member > application > viewer)');
    const app = await server.call('POST', '/api/v1/tokens', { name: 'ci', role: 'application', projects: ['acme/app'] }, tokens.member);
    expect(app.status).toBe(403);
    const someoneElse = await server.call('POST', '/api/v1/tokens', { name: 'as-owner', role: 'member', email: 'owner@acme.io', projects: ['acme/app'] }, tokens.member);
    expect(someoneElse.status).toBe(403);
    expect(someoneElse.body.error).toMatch(/only for its own email \(dev@acme\.io\)/);
    const viewerMints = await server.call('POST', '/api/v1/tokens', { name: 'v2', role: 'viewer', projects: ['acme/app'] }, tokens.viewer);
    expect(viewerMints.status).toBe(403);
    expect(await tokenTable()).toEqual(before);
    expect((await refusals('dev@acme.io')).filter((d) => d.path === '/api/v1/tokens')).toHaveLength(3);

    // Within its role and projects a member mints a token, recorded as created by it.
    const own = await server.call('POST', '/api/v1/tokens', { name: 'dev-viewer', role: 'viewer', email: 'dev@acme.io', projects: ['acme/app'] }, tokens.member);
    expect(own.status).toBe(201);
    expect(own.body).toMatchObject({ role: 'viewer', projects: ['acme/app'], createdBy: ids.dev });
    expect((await server.call('GET', `${FLOWS}/types`, undefined, own.body.token)).status).toBe(200);
    expect((await server.call('DELETE', `/api/v1/tokens/${own.body.id}`, undefined, tokens.member)).status).toBe(204);
  });

  test('a scoped owner lists and revokes only the tokens it created, and itself', async () => {
    const child = await server.call('POST', '/api/v1/tokens', { name: 'child', role: 'member', email: 'dev@acme.io', projects: ['acme/app'] }, tokens.scoped);
    expect(child.status).toBe(201);
    expect(child.body.createdBy).toBe(ids['scoped-owner']);
    const listed = await server.call('GET', '/api/v1/tokens', undefined, tokens.scoped);
    expect(listed.status).toBe(200);
    expect(listed.body.tokens.map((t: any) => t.name).sort()).toEqual(['child', 'scoped-owner']);

    const before = await tokenTable();
    for (const other of ['admin', 'dev', 'auditor']) {
      const r = await server.call('DELETE', `/api/v1/tokens/${ids[other]}`, undefined, tokens.scoped);
      expect(r.status).toBe(403);
      expect(r.body.error).toBe('Token "scoped-owner" may revoke only tokens it created, and itself; only an unscoped owner revokes others');
    }
    expect(await tokenTable()).toEqual(before);
    expect((await server.call('GET', '/api/v1/tokens', undefined, ADMIN_TOKEN)).status).toBe(200);
    expect((await refusals('owner@acme.io')).filter((d) => d.status === 403 && d.path.startsWith('/api/v1/tokens/'))).toHaveLength(3);

    expect((await server.call('DELETE', `/api/v1/tokens/${child.body.id}`, undefined, tokens.scoped)).status).toBe(204);
    expect((await server.call('GET', `${FLOWS}/types`, undefined, child.body.token)).status).toBe(401);
    // The unscoped owner still sees every token.
    const all = (await server.call('GET', '/api/v1/tokens')).body.tokens.map((t: any) => t.name);
    expect(all).toEqual(expect.arrayContaining(['admin', 'scoped-owner', 'dev', 'viewer', 'auditor']));
  });
});

describe('identities', () => {
  test('a scoped owner links identities only for people of its projects; the directory is unchanged after a refusal', async () => {
    expect((await server.call('PUT', '/api/v1/identities/boss@acme.io', { slackUserId: 'UBOSS' })).status).toBe(201);
    expect((await server.call('PUT', '/api/v1/identities/stranger@elsewhere.io', { githubLogin: 'stranger' })).status).toBe(201);
    const before = await directory();

    // Relinking another project's owner to the caller's own Slack user would let it approve as them.
    const relink = await server.call('PUT', '/api/v1/identities/boss@acme.io', { slackUserId: 'UMALLORY' }, tokens.scoped);
    expect(relink.status).toBe(403);
    expect(relink.body.error).toMatch(/boss@acme\.io is not an owner or member of any project of token "scoped-owner" \(acme\/app\)/);
    // Adding them to its own project first does not help: they are a person of acme/other too.
    expect((await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['owner@acme.io'], members: ['dev@acme.io', 'boss@acme.io'] }, tokens.scoped)).status).toBe(200);
    const again = await server.call('PUT', '/api/v1/identities/boss@acme.io', { slackUserId: 'UMALLORY' }, tokens.scoped);
    expect(again.status).toBe(403);
    expect(again.body.error).toMatch(/also an owner or member of acme\/other, outside the projects of token "scoped-owner"/);
    const remove = await server.call('DELETE', '/api/v1/identities/boss@acme.io', undefined, tokens.scoped);
    expect(remove.status).toBe(403);
    expect(await directory()).toEqual(before);
    expect((await refusals('owner@acme.io')).filter((d) => d.path === '/api/v1/identities/boss@acme.io')).toHaveLength(3);
    await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });

    // People of its own projects only: allowed, and the only ones it sees.
    expect((await server.call('PUT', '/api/v1/identities/dev@acme.io', { githubLogin: 'dev' }, tokens.scoped)).status).toBe(201);
    const seen = await server.call('GET', '/api/v1/identities', undefined, tokens.scoped);
    expect(seen.body.identities.map((i: any) => i.email)).toEqual(['dev@acme.io']);
    expect((await server.call('GET', '/api/v1/identities/stranger@elsewhere.io', undefined, tokens.scoped)).status).toBe(403);
    expect((await server.call('GET', '/api/v1/identities', undefined, tokens.auditor)).body.identities).toHaveLength(3);
  });
});

describe('viewer', () => {
  test('reads runs, logs and approvals; start, cancel, approve and reject are 403 and change nothing', async () => {
    const started = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'http://127.0.0.1:9' } });
    expect(started.status).toBe(201);
    const runId = started.body.id as string;
    const approval = await eventually(async () => {
      const a = await server.call('GET', `${FLOWS}/approvals/${runId}`);
      return a.status === 200 ? a.body : undefined;
    });
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${runId}`)).body.status === 'Suspended' ? true : undefined));

    const v = tokens.viewer;
    for (const path of [`${FLOWS}/runs?repositoryIdentifier=acme/app`, `${FLOWS}/${runId}`, `${FLOWS}/${runId}/logs`, `${FLOWS}/${runId}/logs/stream?logOffset=0`,
      `${FLOWS}/approvals/${runId}`, `${FLOWS}/approvals/pending`, `${FLOWS}/types`, '/api/v1/projects/acme/app']) {
      const r = await server.call('GET', path, undefined, v);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
    }
    expect((await server.call('GET', `${FLOWS}/${runId}`, undefined, v)).body.id).toBe(runId);

    const runs = await count('runs');
    const attempts = [
      await server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'http://127.0.0.1:9' } }, v),
      await server.call('POST', `${FLOWS}/${runId}/cancel`, undefined, v),
      await server.call('POST', `${FLOWS}/approvals/${approval.id}/approve`, { approver: 'Owner', approverEmail: 'owner@acme.io' }, v),
      await server.call('POST', `${FLOWS}/approvals/${approval.id}/reject`, { rejector: 'Owner', rejectorEmail: 'owner@acme.io', reason: 'no' }, v),
    ];
    expect(attempts.map((a) => a.status)).toEqual([403, 403, 403, 403]);
    expect(attempts[0].body.message).toMatch(/Requires role/);
    expect(await count('runs')).toBe(runs);
    expect((await server.call('GET', `${FLOWS}/approvals/${approval.id}`)).body).toMatchObject({ status: 'pending', decisions: [] });
    expect((await server.call('GET', `${FLOWS}/${runId}`)).body.status).toBe('Suspended');
    expect((await refusals('token:viewer')).filter((d) => d.status === 403 && d.path.startsWith(FLOWS))).toHaveLength(4);
    expect((await server.call('POST', `${FLOWS}/${runId}/cancel`)).status).toBe(200);
    await waitForRun(server, runId, ['Cancelled']);
  });

  test('every GET of every dialect admits a viewer; every POST, PUT, PATCH and DELETE refuses it', async () => {
    const READING_POSTS = new Set(['post /api/v1/flows/validate']);
    // The audit trail spans every namespace: unscoped admins only.
    // (So are the accounts; `/auth/me` is an account's own, not a token's.)
    const ADMIN_READS = new Set(['get /api/v1/audit', 'get /auth/users', 'get /auth/users/{username}', 'get /auth/me']);
    const doc = (await server.call('GET', '/openapi.json', undefined, null)).body;
    const fill = (p: string) => p.replace(/\{repositoryIdentifier\}/g, 'acme/app').replace(/\{email\}/g, 'dev@acme.io').replace(/\{[^}]+\}/g, 'x');
    let reads = 0;
    let writes = 0;
    for (const [path, ops] of Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)) {
      for (const method of Object.keys(ops)) {
        // A public route (the webhook: its key is the credential) answers whatever token is sent.
        if (ops[method].security?.length === 0) {
          const r = await server.call(method.toUpperCase(), fill(path), {}, tokens.auditor);
          // Registering is public in the route table (a request without a token learns how to make the first admin) and admits admins only.
          if (`${method} ${path}` === 'post /auth/register') expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
          else expect({ method, path, refused: [401, 403].includes(r.status) }).toEqual({ method, path, refused: false });
          continue;
        }
        // The unscoped viewer: a GET may be 400/404 for the made-up parameters, never 401/403.
        const r = await server.call(method.toUpperCase(), fill(path), method === 'get' ? undefined : {}, tokens.auditor);
        // A POST that only checks what it is sent (a flow document) is a read.
        if (ADMIN_READS.has(`${method} ${path}`)) {
          expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
        } else if (method === 'get' || READING_POSTS.has(`${method} ${path}`)) {
          reads++;
          expect({ method, path, refused: [401, 403].includes(r.status) }).toEqual({ method, path, refused: false });
        } else {
          writes++;
          expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
        }
      }
    }
    expect(reads).toBeGreaterThanOrEqual(15);
    expect(writes).toBeGreaterThanOrEqual(20);
  });

  test('the CLI creates viewer tokens', () => {
    expect(parseCommand(['token', 'create', '--name', 'ro', '--role', 'viewer'])).toMatchObject({ kind: 'token.create', input: { role: 'viewer' } });
  });
});

describe('unauthenticated requests', () => {
  const counter = async (surface: string) => {
    const text = (await server.call('GET', '/metrics', undefined, null)).body as string;
    return Number(new RegExp(`^flowgate_unauthenticated_requests_total\\{surface="${surface}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  };

  test('are counted on /metrics by surface, not written to the audit table; authenticated refusals still are', async () => {
    const [rest, github] = [await counter('rest'), await counter('github')];
    // Other work may audit meanwhile (the previous test's run ending): count refusals only.
    const audit = await refusalCount();
    const none = await server.call('GET', `${FLOWS}/runs`, undefined, null);
    const wrong = await server.call('POST', `${FLOWS}/run`, { payload: {} }, 'fg_not-a-token');
    const body = commentPayload({ repo: 'acme/app', issueNumber: 1, body: '/flowgate run gated target=http://127.0.0.1:9', login: 'dev', association: 'OWNER' });
    const forged = await deliver(server.url, 'not-the-webhook-secret-0123', 'issue_comment', body);
    expect([none.status, wrong.status, forged.status]).toEqual([401, 401, 401]);
    // The count and the audit row (if any) are written before the answer is sent.
    expect(await refusalCount()).toBe(audit);
    expect(await counter('rest')).toBe(rest + 2);
    expect(await counter('github')).toBe(github + 1);

    const refused = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'gated', repositoryIdentifier: 'acme/app', target: 'x' } }, tokens.auditor);
    expect(refused.status).toBe(403);
    expect(await refusalCount()).toBe(audit + 1);
    expect(await counter('rest')).toBe(rest + 2);
  });
});
