import { buttonClick, FakeSlack, SlackSender } from '../fakes/slack.js';
import { freshDatabaseUrl } from '../support/database.js';
import { endServer, startServerProcess, type ServerProcess } from '../support/process.js';
import { Recorder } from '../support/recorder.js';
import { BUILTIN_FLOWS, waitForRun } from '../support/server.js';

// Elevated access from Slack, on the real server process: `/flowgate run …` → run card →
// approval request in its thread → an owner clicks Approve → the message shows who approved,
// without buttons → access granted, held, revoked → the result is posted in the thread.
const TIMEOUT = 120_000;
const SECRET = 'e2e-slack-signing-secret-0123';
const CHANNEL = 'C0OPS';
let server: ServerProcess;
const slackApi = new FakeSlack();
const accessApi = new Recorder();

beforeAll(async () => {
  await Promise.all([slackApi.start(), accessApi.start()]);
  slackApi.user('U0DEV', 'dev@acme.io', 'Dev Eloper').user('U0LEAD', 'lead@acme.io', 'Lee Lead');
  server = await startServerProcess({
    DATABASE_URL: await freshDatabaseUrl('e2e_slack'),
    FLOWGATE_MANIFESTS_DIR: BUILTIN_FLOWS,
    FLOWGATE_CREDENTIAL_ACCESS_API: `${accessApi.url}/access`,
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slackApi.apiUrl,
  });
  const project = await server.call('PUT', '/api/v1/projects/acme/app', { provider: 'github', owners: ['lead@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL });
  expect(project.status).toBe(201);
}, TIMEOUT);

afterAll(() => endServer(server, [() => Promise.all([slackApi.stop(), accessApi.stop()])], { exitsCleanly: true }), TIMEOUT);

test('/flowgate run request-elevated-privileges → approved by an owner in the thread → completed, result in the thread', async () => {
  const slack = new SlackSender(server.url, SECRET);
  const asked = await slack.command('run request-elevated-privileges username=dev durationMinutes=0.02 reason="x y"', { user: 'U0DEV', channel: CHANNEL });
  expect(asked.status).toBe(200);

  const card = await slackApi.waitFor('chat.postMessage', (b) => b.channel === CHANNEL && !b.thread_ts);
  const cardTs: string = card.response.ts;
  expect(card.body.text).toBe('Request Elevated Privileges on acme/app, started by dev@acme.io: in progress');
  const runId = /Run `([0-9a-f-]{36})`/.exec(JSON.stringify(card.body.blocks))![1];

  const request = await slackApi.waitFor('chat.postMessage', (b) => b.thread_ts === cardTs && (b.blocks ?? []).some((x: any) => x.type === 'actions'));
  const shown = JSON.stringify(request.body.blocks);
  expect(shown).toContain('dev@acme.io requests elevated access for dev (0.02 min): x y');
  expect(shown).toContain('• reason: x y');
  const buttons = request.body.blocks.find((x: any) => x.type === 'actions').elements;
  expect(buttons.map((e: any) => e.action_id)).toEqual(['flowgate_approve', 'flowgate_reject']);
  const approvalId: string = buttons[0].value;
  const pending = await server.call('GET', `/sfp/api/flows/approvals/by-slack/${CHANNEL}/${cardTs}`);
  expect(pending.body).toMatchObject({ id: approvalId, executionId: runId, status: 'pending', requestedBy: 'dev@acme.io', approvers: ['lead@acme.io'] });
  expect(accessApi.requests).toHaveLength(0);

  const clicked = await slack.interaction(buttonClick({ actionId: 'flowgate_approve', value: approvalId, user: 'U0LEAD', channel: CHANNEL, message: { ts: request.response.ts, thread_ts: cardTs, blocks: request.body.blocks } }));
  expect(clicked.status).toBe(200);
  const decided = await slackApi.waitFor('chat.update', (b) => b.ts === request.response.ts);
  expect(decided.body.blocks.some((x: any) => x.type === 'actions')).toBe(false);
  expect(JSON.stringify(decided.body.blocks)).toContain(':white_check_mark: *Approved* by Lee Lead (lead@acme.io)');
  expect(decided.body.text).toBe('Approved: Request Elevated Privileges on acme/app by lead@acme.io');

  const run = await waitForRun({ call: (m, p, b) => server.call(m, p, b) }, runId, ['Completed', 'Failed'], 60_000);
  expect(run).toMatchObject({ status: 'Completed', triggeredBy: 'dev@acme.io', result: { user: 'dev', grantedFor: 0.02, revoked: true } });
  expect(accessApi.requests.map((r) => r.path)).toEqual(['/access/grant', '/access/revoke']);
  expect(accessApi.requests[0].json).toEqual({ user: 'dev', minutes: 0.02, reason: 'x y' });

  const granted = await slackApi.waitFor('chat.postMessage', (b) => b.thread_ts === cardTs && b.text === 'Access granted to dev for 0.02 minutes');
  const result = await slackApi.waitFor('chat.postMessage', (b) => b.thread_ts === cardTs && /^Request Elevated Privileges completed in /.test(b.text));
  expect(result.at).toBeGreaterThan(granted.at);
  const outputs: string = result.body.blocks.find((x: any) => x.text?.text.startsWith('*Outputs*')).text.text;
  expect(outputs.split('\n').sort()).toEqual(['*Outputs*', '• grantedFor: 0.02', '• revoked: true', '• user: dev']);
  const finalCard = await slackApi.waitFor('chat.update', (b) => b.ts === cardTs);
  expect(finalCard.body.text).toMatch(/^Request Elevated Privileges on acme\/app, started by dev@acme.io: completed in /);
  // Nobody was told anything privately: nothing went wrong.
  expect(slackApi.to('chat.postEphemeral')).toHaveLength(0);
}, TIMEOUT);
