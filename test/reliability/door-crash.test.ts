import { buttonClick, FakeSlack, SlackSender, type SlackCall } from '../fakes/slack.js';
import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { eventually } from '../support/server.js';
import pg from 'pg';

// Door deliveries are durable in `inbound_deliveries`: a click Slack got its 200 for is decided
// even when the process is killed (SIGKILL) before processing it, once, by the restarted process;
// a delivery that hangs does not hold up the others; a redelivery afterwards does nothing.
const TIMEOUT = 180_000;
const SECRET = 'door-crash-slack-signing-secret';
const CHANNEL = 'C0CRASH';
const slackApi = new FakeSlack();
let databaseUrl: string;
let server: ServerProcess | undefined;

const env = () => ({
  DATABASE_URL: databaseUrl, FLOWGATE_EXECUTOR_ID: 'door-crash',
  SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slackApi.apiUrl,
});

beforeAll(async () => {
  await slackApi.start();
  slackApi.user('U0DEV', 'dev@acme.io').user('U0LEAD', 'lead@acme.io').user('U0SECOND', 'second@acme.io');
  databaseUrl = await freshDatabaseUrl('door_crash');
}, TIMEOUT);
afterAll(() => endServer(server, [() => slackApi.stop()]), TIMEOUT);

async function query<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

const buttonsOf = (c: SlackCall) => (c.body.blocks ?? []).find((b: any) => b.type === 'actions')?.elements;

/** `/flowgate run gated-log` in the channel; resolves with its approval request in the card's thread. */
async function requested(slack: SlackSender, n: number) {
  const r = await slack.command('run gated-log', { user: 'U0DEV', channel: CHANNEL, triggerId: `start.${n}` });
  expect(r.status).toBe(200);
  await eventually(async () => (slackApi.to('chat.postMessage', (b) => Boolean(b.thread_ts && buttonsOf({ body: b } as SlackCall))).length >= n ? true : undefined), 60_000, `approval request ${n}`);
  const request = slackApi.to('chat.postMessage', (b) => Boolean(b.thread_ts && buttonsOf({ body: b } as SlackCall)))[n - 1];
  // Posted is recorded once chat.postMessage answered: wait for it, so the decision's update finds the message.
  const approvalId: string = buttonsOf(request)[0].value;
  await eventually(async () => ((await query<{ ts: string | null }>(`select chat->'slack'->>'messageTs' as ts from approvals where id = $1`, [approvalId]))[0]?.ts ? true : undefined), 30_000, 'the request recorded as posted');
  return { request, approvalId };
}

const click = (slack: SlackSender, user: string, r: { request: SlackCall; approvalId: string }, triggerId: string) =>
  slack.interaction(buttonClick({ actionId: 'flowgate_approve', value: r.approvalId, user, channel: CHANNEL, triggerId, message: { ts: r.request.response.ts, thread_ts: r.request.body.thread_ts, blocks: r.request.body.blocks } }));

const delivery = async (id: string) => (await query<{ status: string; attempts: number }>(`select status, attempts from inbound_deliveries where door = 'slack' and delivery_id = $1`, [id]))[0];
const approval = async (id: string) => (await query<{ status: string; decisions: unknown[] }>(`select status, decisions from approvals where id = $1`, [id]))[0];
const runOf = async (approvalId: string) => (await query<{ status: string }>(`select r.status from runs r join approvals a on a.run_id = r.id where a.id = $1`, [approvalId]))[0].status;

test('a click answered but not yet processed when the process is killed is decided once after the restart; a stuck one holds up no other', async () => {
  server = await startServerProcess(env());
  const put = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['lead@acme.io', 'second@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL });
  expect(put.status).toBe(201);
  const slack = new SlackSender(server.url, SECRET);
  const first = await requested(slack, 1);
  const second = await requested(slack, 2);

  // Slack hangs when asked who U0LEAD is: the click is recorded and answered, its processing waits.
  const hung = slackApi.hold('users.info', (b) => b.user === 'U0LEAD');
  const clicked = await click(slack, 'U0LEAD', first, 'crash.click.1');
  expect(clicked.status).toBe(200);
  await eventually(async () => (hung.seen() > 0 ? true : undefined), 30_000, 'the click being processed');

  // Another person's click goes through meanwhile.
  expect((await click(slack, 'U0SECOND', second, 'crash.click.2')).status).toBe(200);
  await eventually(async () => ((await runOf(second.approvalId)) === 'completed' ? true : undefined), 60_000, 'the second run completed');
  expect(await delivery('action:crash.click.2')).toEqual({ status: 'done', attempts: 1 });

  expect(await delivery('action:crash.click.1')).toEqual({ status: 'processing', attempts: 1 });
  expect((await approval(first.approvalId)).status).toBe('pending');
  server.kill('SIGKILL');
  expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });
  hung.release();

  // The same replica (executor id) again: it takes up what its previous process left, at once.
  server = await startServerProcess(env());
  await eventually(async () => ((await runOf(first.approvalId)) === 'completed' ? true : undefined), 60_000, 'the first run completed after the restart');
  const decided = await approval(first.approvalId);
  expect(decided.status).toBe('approved');
  expect(decided.decisions).toHaveLength(1);
  expect(decided.decisions[0]).toMatchObject({ email: 'lead@acme.io', verdict: 'approve' });
  await eventually(async () => ((await delivery('action:crash.click.1')).status === 'done' ? true : undefined), 30_000, 'the delivery marked done');
  expect(await delivery('action:crash.click.1')).toEqual({ status: 'done', attempts: 2 });

  // Slack redelivers the click (the same trigger): a duplicate, nothing happens.
  const ephemeralBefore = slackApi.to('chat.postEphemeral').length;
  expect((await click(new SlackSender(server.url, SECRET), 'U0LEAD', first, 'crash.click.1')).status).toBe(200);
  expect(await delivery('action:crash.click.1')).toEqual({ status: 'done', attempts: 2 });
  expect((await approval(first.approvalId)).decisions).toHaveLength(1);
  expect(slackApi.to('chat.postEphemeral')).toHaveLength(ephemeralBefore);
  // Nobody was told anything privately: nothing went wrong.
  expect(ephemeralBefore).toBe(0);
}, TIMEOUT);
