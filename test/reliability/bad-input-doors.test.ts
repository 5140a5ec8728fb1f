import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { DOOR_SECRETS, startWithAllDoors, type AllDoors } from '../support/all-doors.js';
import { createProject, type TestServer } from '../support/server.js';

// Property: whatever arrives at a webhook door — no signature, a wrong one, or a right one over a
// body of any shape, with any event header and content type — the door never answers 5xx, a
// refusal is a JSON error, and a refused request writes nothing (its audit record aside).
const { slack: SLACK_SECRET, github: GITHUB_SECRET, adoUser: ADO_USER, adoPassword: ADO_PASSWORD } = DOOR_SECRETS;
const TABLES = ['runs', 'step_runs', 'approvals', 'inbound_deliveries', 'identities', 'log_lines'];
let doors: AllDoors;
let server: TestServer;

beforeAll(async () => {
  doors = await startWithAllDoors();
  server = doors.server;
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'] });
});
afterAll(async () => { await doors?.stop(); });

async function counts(): Promise<string> {
  const conn = server.services.orm.em.getConnection();
  const rows = await Promise.all(TABLES.map((t) => conn.execute<{ n: string }[]>(`select count(*)::text as n from ${t}`)));
  return rows.map((r, i) => `${TABLES[i]}=${r[0].n}`).join(' ');
}

type Auth = 'none' | 'wrong' | 'valid';
const text = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', ' ', '%00', "' or 1=1 --", 'a'.repeat(300), '\u0000'));
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 120 }),
  fc.constantFrom('{', '[1,', 'null', 'payload=%7B', 'payload={"type":"block_actions"}', 'command=/flowgate&text=run', '{"type":"url_verification"}',
    '{"action":"created","comment":{"body":"/flowgate run"}}', '{"eventType":"workitem.commented","resource":{"id":"x"}}', '{"eventType":"workitem.updated","resource":null}'),
);
const contentType = fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', '');

function request(door: 'slack' | 'github' | 'azure', auth: Auth, raw: string, type: string, anyHeader: string) {
  // What an HTTP client can send at all: printable ASCII, no surrounding spaces.
  const header = anyHeader.replace(/[^\x21-\x7e]/g, '');
  const headers: Record<string, string> = type ? { 'content-type': type } : {};
  if (door === 'slack') {
    const ts = Math.floor(Date.now() / 1000);
    headers['x-slack-request-timestamp'] = auth === 'none' ? header : String(ts);
    if (auth !== 'none') headers['x-slack-signature'] = `v0=${createHmac('sha256', auth === 'valid' ? SLACK_SECRET : 'wrong-secret-0123456789').update(`v0:${ts}:${raw}`).digest('hex')}`;
    return { path: '/slack/events', headers };
  }
  if (door === 'github') {
    headers['x-github-event'] = header;
    headers['x-github-delivery'] = `d-${Math.random()}`;
    if (auth !== 'none') headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', auth === 'valid' ? GITHUB_SECRET : 'wrong-secret-0123456789').update(raw).digest('hex')}`;
    return { path: '/github/webhooks', headers };
  }
  if (auth !== 'none') headers.authorization = `Basic ${Buffer.from(`${ADO_USER}:${auth === 'valid' ? ADO_PASSWORD : 'wrong'}`).toString('base64')}`;
  return { path: '/azure-devops/hooks', headers };
}

test('no 5xx, JSON refusals, nothing written on refusal — at every webhook door', async () => {
  let cases = 0;
  let accepted = 0;
  await fc.assert(fc.asyncProperty(
    fc.constantFrom('slack' as const, 'github' as const, 'azure' as const), fc.constantFrom<Auth>('none', 'wrong', 'valid'), body, contentType,
    fc.oneof(fc.constantFrom('issue_comment', 'issues', 'pull_request', 'ping', 'workflow_run', 'installation'), text),
    async (door, auth, raw, type, header) => {
      cases++;
      const { path, headers } = request(door, auth, raw, type, header);
      const before = await counts();
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: raw });
      const answer = await res.text();
      expect({ door, auth, status: res.status < 500 }).toEqual({ door, auth, status: true });
      if (auth !== 'valid') expect(res.status).toBe(401);
      if (res.status >= 400) {
        expect(JSON.parse(answer)).toMatchObject({ error: expect.any(String) });
        expect(await counts()).toBe(before);
      } else {
        accepted++;
      }
    },
  ), { numRuns: 600, interruptAfterTimeLimit: 150_000 });
  expect(cases).toBeGreaterThanOrEqual(500);
  // Some signed deliveries must have been acknowledged, or the property only exercised refusals.
  expect(accepted).toBeGreaterThan(0);
}, 200_000);
