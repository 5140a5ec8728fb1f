import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { FakeSmtp } from '../fakes/smtp.js';
import { createProject, startRun, startTestServer, type TestServer, waitForRun } from '../support/server.js';

// email.smtp against a local mail server. Its settings are read from the environment when a step
// runs (as the catalogue reads them), so the tests set and unset them there.
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const USER = 'flowgate-mailer';
const PASS = 's3cret/p@ss:7781';
const smtp = new FakeSmtp({ user: USER, pass: PASS });
const saved = { url: process.env.FLOWGATE_SMTP_URL, from: process.env.FLOWGATE_SMTP_FROM };
let server: TestServer;
let db: pg.Pool;
let flowsDir: string;

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

beforeAll(async () => {
  await smtp.start();
  flowsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-email-'));
  fs.copyFileSync(path.join(FIXTURES, 'plugin-flows/email.yaml'), path.join(flowsDir, 'email.yaml'));
  for (const f of fs.readdirSync(path.join(FIXTURES, 'email-flows'))) fs.copyFileSync(path.join(FIXTURES, 'email-flows', f), path.join(flowsDir, f));
  setEnv('FLOWGATE_SMTP_URL', smtp.url);
  setEnv('FLOWGATE_SMTP_FROM', 'Flowgate <flowgate@acme.io>');
  server = await startTestServer({ flows: flowsDir });
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server);
}, 60_000);
afterAll(async () => {
  setEnv('FLOWGATE_SMTP_URL', saved.url);
  setEnv('FLOWGATE_SMTP_FROM', saved.from);
  await db?.end();
  await server?.stop();
  await smtp.stop();
  if (flowsDir) fs.rmSync(flowsDir, { recursive: true, force: true });
});

const step = async (id: string) => (await db.query(`select status, output, error, attempt from step_runs where run_id = $1 and step_ref = 'mail'`, [id])).rows[0];
/** Everything a run shows anyone: its steps (with each attempt), its log lines, and the API's view of it. */
const shown = async (id: string) => JSON.stringify([
  (await db.query('select output, error, attempts from step_runs where run_id = $1', [id])).rows,
  (await db.query('select message from log_lines where run_id = $1', [id])).rows,
  (await server.call('GET', `/sfp/api/flows/${id}`)).body,
]);
const hidden = [PASS, encodeURIComponent(PASS), smtp.url];

describe('email.smtp', () => {
  test('sends the mail through the configured server, logged in, and answers its message id', async () => {
    const before = smtp.received.length;
    const id = await startRun(server, 'email', { version: '1.4.2' });
    const run = await waitForRun(server, id);
    expect({ status: run.status, error: run.error }).toEqual({ status: 'Completed', error: null });
    const mail = smtp.received.slice(before);
    expect(mail).toHaveLength(1);
    const [m] = mail;
    expect(m.user).toBe(USER);
    expect(m.mailFrom).toBe('flowgate@acme.io');
    expect(m.rcptTo.sort()).toEqual(['ann@acme.io', 'bob@acme.io', 'ops@acme.io']);
    expect(m.headers).toMatchObject({ from: 'Flowgate <flowgate@acme.io>', to: 'ann@acme.io, bob@acme.io', cc: 'ops@acme.io', 'reply-to': 'release@acme.io', subject: 'Release 1.4.2 approved' });
    // Both bodies, as alternatives of one message.
    expect(m.headers['content-type']).toMatch(/^multipart\/alternative/);
    expect(m.raw).toContain(`Release 1.4.2 was approved.\r\nRun ${id}`);
    expect(m.raw).toContain('<p>Release <b>1.4.2</b> was approved.</p>');
    const out = (await step(id)).output;
    expect(out).toEqual({ messageId: m.headers['message-id'], accepted: ['ann@acme.io', 'bob@acme.io', 'ops@acme.io'], rejected: [] });
    const seen = await shown(id);
    expect(seen).toContain(out.messageId);
    for (const secret of hidden) expect(seen).not.toContain(secret);
  });

  test('a 5xx refusal fails the step for good, saying what the server answered; a 4xx is retried', async () => {
    smtp.refuseNext(554, 'Message rejected as spam');
    let attempts = smtp.attempts;
    const refusedId = await startRun(server, 'email-retried');
    const refused = await waitForRun(server, refusedId);
    expect(refused.status).toBe('Failed');
    expect(refused.error).toMatch(/sending mail through 127\.0\.0\.1:\d+ failed: Message failed: 554 Message rejected as spam/);
    expect((await step(refusedId)).attempt).toBe(1);
    expect(smtp.attempts - attempts).toBe(1);
    for (const secret of hidden) expect(await shown(refusedId)).not.toContain(secret);

    smtp.refuseNext(451, 'Greylisted, try again');
    attempts = smtp.attempts;
    const passedId = await startRun(server, 'email-retried');
    const passed = await waitForRun(server, passedId);
    expect(passed.status).toBe('Completed');
    expect((await step(passedId)).attempt).toBe(2);
    expect(smtp.attempts - attempts).toBe(2);
    expect(smtp.received.at(-1)!.headers.subject).toBe('Retried');
  });

  test('a refused login fails for good, and its error shows no password', async () => {
    const wrong = 'wrong-pass-0042';
    setEnv('FLOWGATE_SMTP_URL', `smtp://${USER}:${wrong}@127.0.0.1:${smtp.port}`);
    try {
      const id = await startRun(server, 'email-retried');
      const run = await waitForRun(server, id);
      expect(run.status).toBe('Failed');
      expect(run.error).toContain(`failed: Invalid login: 535 Invalid username or password ${USER}:***`);
      expect((await step(id)).attempt).toBe(1);
      const seen = await shown(id);
      for (const secret of [wrong, Buffer.from(wrong).toString('base64'), Buffer.from(`\0${USER}\0${wrong}`).toString('base64')]) expect(seen).not.toContain(secret);
    } finally {
      setEnv('FLOWGATE_SMTP_URL', smtp.url);
    }
  });

  test('an address that is not one fails the step for good, naming the field, and nothing is sent', async () => {
    const attempts = smtp.attempts;
    const id = await startRun(server, 'email-bad-address');
    const run = await waitForRun(server, id);
    expect(run.status).toBe('Failed');
    expect(run.error).toMatch(/invalid input for email\.smtp step: with\.to\.1: not an email address/);
    expect((await step(id)).attempt).toBe(1);
    expect(smtp.attempts).toBe(attempts);
  });

  test('without FLOWGATE_SMTP_URL the catalogue shows it unavailable, saying why, and a step fails naming the setting', async () => {
    expect((await server.call('GET', '/api/v1/plugins/email.smtp')).body).toMatchObject({ id: 'email.smtp', category: 'protocol', credentials: true, requires: ['setting:FLOWGATE_SMTP_URL'], available: true });
    setEnv('FLOWGATE_SMTP_URL', undefined);
    try {
      const entry = (await server.call('GET', '/api/v1/plugins/email.smtp')).body;
      expect(entry).toMatchObject({ available: false, unavailableReason: 'FLOWGATE_SMTP_URL is not set on this server' });
      const id = await startRun(server, 'email-retried');
      const run = await waitForRun(server, id);
      expect(run.status).toBe('Failed');
      expect(run.error).toMatch(/FLOWGATE_SMTP_URL is not set on this server/);
      expect((await step(id)).attempt).toBe(1);
    } finally {
      setEnv('FLOWGATE_SMTP_URL', smtp.url);
    }
  });
});
