import { WebClient } from '@slack/web-api';
import { deliveryStatus, retakeStalledDeliveries } from '../../src/doors/inbound.js';
import { SlackPeople } from '../../src/doors/slack/people.js';
import { buttonClick, FakeSlack, mentionEvent, SlackSender, viewSubmission, type SlackCall } from '../fakes/slack.js';
import { ConsoleClient, textOf } from '../support/console.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// The Slack door in process: real PostgreSQL, engine and HTTP; Slack is the local fake.
const SECRET = 'slack-signing-secret-for-tests';
const CHANNEL = 'C0OPS';
const FLOWS = '/sfp/api/flows';
let server: TestServer;
let slack: SlackSender;
const fake = new FakeSlack();
const target = new Recorder();

beforeAll(async () => {
  await Promise.all([fake.start(), target.start()]);
  fake.user('U0DEV', 'dev@acme.io', 'Dev Eloper').user('U0OWNER', 'owner@acme.io', 'Olivia Owner').user('U0SECOND', 'second@acme.io').user('U0MAL', 'mallory@acme.io');
  server = await startTestServer({ env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL });
  await createProject(server, 'acme/other', { owners: ['owner@acme.io'] });
  slack = new SlackSender(server.url, SECRET);
});
afterAll(async () => {
  await server?.stop();
  await Promise.all([fake.stop(), target.stop()]);
});

const blocksText = (c: SlackCall) => JSON.stringify(c.body.blocks ?? []);
const hasButtons = (c: SlackCall) => (c.body.blocks ?? []).some((b: any) => b.type === 'actions');
const runIdOf = (card: SlackCall) => /Run `([0-9a-f-]{36})`/.exec(blocksText(card))![1];

/** The project's approver group `gate`, which the `gated-*` fixture flows name as their approvers. */
const setGate = (...emails: string[]) =>
  createProject(server, 'acme/app', { owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL, approverGroups: { gate: emails } });

/** `/flowgate run gated …` from a channel; resolves with the run card and the approval request in its thread. */
async function gated(tag: string, extra = '', user = 'U0DEV', flow = 'gated') {
  const r = await slack.command(`run ${flow} target=${target.url}/${tag} ${extra}`.trim(), { user, channel: CHANNEL });
  expect(r.status).toBe(200);
  const card = await fake.waitFor('chat.postMessage', (b) => !b.thread_ts && JSON.stringify(b.blocks ?? '').includes(`/${tag}`));
  const request = await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts);
  return { card, request, runId: runIdOf(card), approvalId: request.body.blocks.find((b: any) => b.type === 'actions').elements[0].value as string };
}

test('url_verification answers the challenge', async () => {
  const r = await slack.event({ type: 'url_verification', token: 'x', challenge: 'challenge-123' });
  expect(r.status).toBe(200);
  expect(r.json).toEqual({ challenge: 'challenge-123' });
});

test('run: a card in the channel, the approval in its thread; an owner approves; the message shows it; the result is posted', async () => {
  const before = fake.calls.length;
  const { card, request, runId, approvalId } = await gated('approve');
  expect(card.body.channel).toBe(CHANNEL);
  expect(card.authorization).toBe('Bearer xoxb-test');
  const cardTs = card.response.ts;
  expect(request.body).toMatchObject({ channel: CHANNEL, thread_ts: cardTs });
  expect(blocksText(request)).toContain('Approval needed');
  expect(request.body.blocks.find((b: any) => b.type === 'actions').elements.map((e: any) => [e.action_id, e.value])).toEqual([['flowgate_approve', approvalId], ['flowgate_reject', approvalId]]);

  // The thread finds its approval over REST.
  // Where the request was posted is recorded once Slack answered the post: wait for that record.
  const found = await eventually(async () => {
    const r = await server.call('GET', `${FLOWS}/approvals/by-slack/${CHANNEL}/${cardTs}`);
    return r.body?.context?.callback?.slack?.messageTs ? r : undefined;
  });
  expect(found.status).toBe(200);
  expect(found.body).toMatchObject({ id: approvalId, executionId: runId, requestedBy: 'dev@acme.io', status: 'pending', context: { callback: { type: 'slack', slack: { channel: CHANNEL, threadTs: cardTs } } } });
  expect(found.body.context.callback.slack.messageTs).toBeDefined();
  const run = await server.call('GET', `${FLOWS}/${runId}`);
  expect(run.body).toMatchObject({ triggeredBy: 'dev@acme.io', repositoryIdentifier: 'acme/app' });

  const click = await slack.interaction(buttonClick({ actionId: 'flowgate_approve', value: approvalId, user: 'U0OWNER', channel: CHANNEL, message: { ts: found.body.context.callback.slack.messageTs, thread_ts: cardTs } }));
  expect(click.status).toBe(200);
  const updated = await fake.waitFor('chat.update', (b) => b.ts === found.body.context.callback.slack.messageTs && JSON.stringify(b.blocks).includes('Approved'));
  expect(hasButtons(updated)).toBe(false);
  expect(blocksText(updated)).toContain('Olivia Owner (owner@acme.io)');

  expect((await waitForRun(server, runId)).status).toBe('Completed');
  const reply = await fake.waitFor('chat.postMessage', (b) => b.thread_ts === cardTs && /completed/.test(b.text));
  expect(blocksText(reply)).toContain('Outputs');
  const cardUpdate = await fake.waitFor('chat.update', (b) => b.ts === cardTs);
  expect(blocksText(cardUpdate)).toContain('*completed*');
  // Users were looked up once each and cached; the bot identity once.
  expect(fake.calls.slice(before).filter((c) => c.method === 'users.info').map((c) => c.body.user).sort()).toEqual(['U0DEV', 'U0OWNER']);
  expect(fake.to('chat.postEphemeral').filter((c) => c.at > card.at && c.body.user === 'U0OWNER')).toHaveLength(0);
});


const click = (actionId: string, approvalId: string, user: string, request: SlackCall, card: SlackCall, triggerId?: string) =>
  buttonClick({ actionId, value: approvalId, user, channel: CHANNEL, message: { ts: request.response.ts, thread_ts: card.response.ts, blocks: request.body.blocks }, triggerId });
const approvalOf = async (id: string) => (await server.call('GET', `${FLOWS}/approvals/${id}`)).body;
const ephemeralTo = (user: string, text: RegExp) => fake.waitFor('chat.postEphemeral', (b) => b.user === user && text.test(b.text));

test('reject: the Reject button opens a modal asking why; submitting it rejects with the reason and the run fails', async () => {
  const { card, request, runId, approvalId } = await gated('reject');
  const r = await slack.interaction(click('flowgate_reject', approvalId, 'U0OWNER', request, card, 'trigger.reject.1'));
  expect(r.status).toBe(200);
  const opened = await fake.waitFor('views.open', (b) => b.view?.private_metadata === approvalId);
  expect(opened.body.trigger_id).toBe('trigger.reject.1');
  expect(opened.body.view).toMatchObject({ type: 'modal', callback_id: 'flowgate_reject', private_metadata: approvalId });
  expect((await approvalOf(approvalId)).status).toBe('pending');

  // The reason is required: a blank one is refused in the modal, and nothing is decided.
  const blank = await slack.interaction(viewSubmission({ view: opened.body.view, viewId: opened.response.view.id, user: 'U0OWNER', reason: '   ' }));
  expect(blank.json).toEqual({ response_action: 'errors', errors: { reason: 'Say why you reject this request.' } });
  expect((await approvalOf(approvalId)).status).toBe('pending');

  const submitted = await slack.interaction(viewSubmission({ view: opened.body.view, viewId: opened.response.view.id, user: 'U0OWNER', reason: 'not during the freeze' }));
  expect(submitted.status).toBe(200);
  const run = await waitForRun(server, runId);
  expect(run.status).toBe('Failed');
  expect(run.error).toMatch(/approval rejected by owner@acme.io: not during the freeze/);
  expect(await approvalOf(approvalId)).toMatchObject({ status: 'rejected', resolvedBy: 'owner@acme.io', reason: 'not during the freeze', decisions: [{ door: 'slack', verdict: 'reject' }] });
  const updated = await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /Rejected/.test(JSON.stringify(b.blocks)));
  expect(hasButtons(updated)).toBe(false);
  expect(blocksText(updated)).toContain('not during the freeze');
  await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && /failed/.test(b.text));
  expect(target.to('/reject/after')).toHaveLength(0);
});

test('a click by someone who may not decide gets a private reason; the request stays pending with its buttons', async () => {
  await setGate('owner@acme.io', 'dev@acme.io');
  const { card, request, approvalId } = await gated('unauthorized', '', 'U0DEV', 'gated-group');
  await slack.interaction(click('flowgate_approve', approvalId, 'U0MAL', request, card));
  const notOwner = await ephemeralTo('U0MAL', /not an approver/);
  expect(notOwner.body).toMatchObject({ channel: CHANNEL, thread_ts: card.response.ts, text: 'mallory@acme.io is not an approver of this request (approvers: owner@acme.io, dev@acme.io)' });
  await slack.interaction(click('flowgate_approve', approvalId, 'U0DEV', request, card));
  expect((await ephemeralTo('U0DEV', /own request/)).body.text).toBe('dev@acme.io requested this and may not approve their own request');
  // Reject asks no reason of someone who may not reject: no modal, the same private answer.
  await slack.interaction(click('flowgate_reject', approvalId, 'U0MAL', request, card));
  await eventually(async () => (fake.to('chat.postEphemeral', (b) => b.user === 'U0MAL').length === 2 ? true : undefined));
  // Someone Slack cannot tell us the email of is told how to get linked.
  await slack.interaction(click('flowgate_approve', approvalId, 'U0NOBODY', request, card));
  expect((await ephemeralTo('U0NOBODY', /could not find an email/)).body.text).toContain('slackUserId U0NOBODY');

  expect(fake.to('views.open', (b) => b.view?.private_metadata === approvalId)).toHaveLength(0);
  expect(await approvalOf(approvalId)).toMatchObject({ status: 'pending', decisions: [] });
  expect(fake.to('chat.update', (b) => b.ts === request.response.ts)).toHaveLength(0);
});

test('a double click and a Slack retry give one decision', async () => {
  const { card, request, runId, approvalId } = await gated('double');
  const first = click('flowgate_approve', approvalId, 'U0OWNER', request, card, 'trigger.double.1');
  const second = click('flowgate_approve', approvalId, 'U0OWNER', request, card, 'trigger.double.2');
  const answers = await Promise.all([slack.interaction(first), slack.interaction(second), slack.interaction(first, { retryNum: 1 })]);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
  expect((await waitForRun(server, runId)).status).toBe('Completed');
  expect((await approvalOf(approvalId)).decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', verdict: 'approve', door: 'slack' })]);
  // The retry was recognised as the same delivery; the second click was told it is decided.
  expect(await deliveryStatus(server.services.orm, 'slack', 'action:trigger.double.1')).toEqual({ status: 'done', attempts: 1, error: null });
  expect((await ephemeralTo('U0OWNER', /already approved/)).body.text).toBe('Approval request already approved');
  expect(target.to('/double/after')).toHaveLength(1);
  const audit = await server.services.orm.em.fork().getConnection().execute(`select action, details->>'as' as "as" from audit_events where target_id = ? and action like 'approval.%' order by action`, [approvalId]);
  expect(audit.map((a: any) => a.action)).toEqual(['approval.approved', 'approval.refused', 'approval.requested']);
  // Each decision and refusal keeps the identity the door used, and how it became an email.
  expect(audit.filter((a: any) => a.action !== 'approval.requested').map((a: any) => a.as)).toEqual(['Slack user U0OWNER, by its profile email', 'Slack user U0OWNER, by its profile email']);
});

test('a click processed again after it decided (a crash before it was marked done) decides nothing more and tells nobody', async () => {
  const { card, request, runId, approvalId } = await gated('again');
  expect((await slack.interaction(click('flowgate_approve', approvalId, 'U0OWNER', request, card, 'trigger.again.1'))).status).toBe(200);
  expect((await waitForRun(server, runId)).status).toBe('Completed');
  await eventually(async () => ((await deliveryStatus(server.services.orm, 'slack', 'action:trigger.again.1'))?.status === 'done' ? true : undefined));
  // As a crash after the decision and before the delivery was marked done leaves it, past its lease.
  await server.services.orm.em.fork().getConnection().execute(
    `update inbound_deliveries set status = 'processing', updated_at = now() - interval '5 minutes' where door = 'slack' and delivery_id = 'action:trigger.again.1'`);
  // Taken up by this sweep (or by the server's own, should it run meanwhile).
  await retakeStalledDeliveries();
  await eventually(async () => ((await deliveryStatus(server.services.orm, 'slack', 'action:trigger.again.1'))?.status === 'done' ? true : undefined));
  expect(await deliveryStatus(server.services.orm, 'slack', 'action:trigger.again.1')).toEqual({ status: 'done', attempts: 2, error: null });
  expect((await approvalOf(approvalId)).decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', verdict: 'approve', door: 'slack' })]);
  expect(fake.to('chat.postEphemeral', (b) => b.user === 'U0OWNER' && b.thread_ts === card.response.ts)).toHaveLength(0);
  expect(target.to('/again/after')).toHaveLength(1);
});

test('a retried event is processed once: one run, one card', async () => {
  const event = mentionEvent({ text: '<@U0BOT> run notifier text="from a mention"', user: 'U0DEV', channel: CHANNEL, eventId: 'Ev0RETRY' });
  expect((await slack.event(event)).status).toBe(200);
  expect((await slack.event(event, { retryNum: 1 })).status).toBe(200);
  expect((await slack.event(event, { retryNum: 2 })).status).toBe(200);
  const card = await fake.waitFor('chat.postMessage', (b) => !b.thread_ts && /from a mention/.test(JSON.stringify(b.blocks)));
  await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && b.text === 'from a mention');
  await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && /completed/.test(b.text));
  expect((await waitForRun(server, runIdOf(card))).status).toBe('Completed');
  await new Promise((r) => setTimeout(r, 300));
  expect(fake.to('chat.postMessage', (b) => !b.thread_ts && /from a mention/.test(JSON.stringify(b.blocks)))).toHaveLength(1);
  expect(await deliveryStatus(server.services.orm, 'slack', 'event:Ev0RETRY')).toEqual({ status: 'done', attempts: 1, error: null });
});

test('a bad signature or a stale timestamp: 401, and nothing happens', async () => {
  const runsBefore = (await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&limit=100`)).body.totalCount;
  const callsBefore = fake.calls.length;
  const who = { user: 'U0DEV', channel: CHANNEL };
  const now = Math.floor(Date.now() / 1000);
  const answers = [
    await slack.command('run notifier', who, { secret: 'not-the-signing-secret-0123' }),
    await slack.command('run notifier', who, { timestamp: now - 6 * 60 }),
    await slack.command('run notifier', who, { timestamp: now + 6 * 60 }),
    await slack.command('run notifier', who, { signature: 'v0=' + '0'.repeat(64) }),
    await slack.command('run notifier', who, { signature: 'v1=abc' }),
    await slack.event({ type: 'url_verification', challenge: 'c' }, { secret: 'not-the-signing-secret-0123' }),
    await slack.interaction(buttonClick({ actionId: 'flowgate_approve', value: 'x', user: 'U0OWNER', channel: CHANNEL, message: { ts: '1.1' } }), { timestamp: now - 301 }),
  ];
  expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 401, 401, 401, 401]);
  expect(answers[0].json).toEqual({ error: 'Slack request verification failed' });
  const unsigned = await fetch(`${server.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"url_verification","challenge":"c"}' });
  expect(unsigned.status).toBe(401);
  await new Promise((r) => setTimeout(r, 500));
  expect(fake.calls.length).toBe(callsBefore);
  expect((await server.call('GET', `${FLOWS}/runs?repositoryIdentifier=acme/app&limit=100`)).body.totalCount).toBe(runsBefore);
});

test('what was wrong with a command comes back privately', async () => {
  const who = { user: 'U0DEV', channel: CHANNEL };
  const ask = async (text: string, expected: RegExp) => {
    const n = fake.to('chat.postEphemeral', (b) => b.user === 'U0DEV').length;
    expect((await slack.command(text, who)).status).toBe(200);
    const reply = await eventually(async () => fake.to('chat.postEphemeral', (b) => b.user === 'U0DEV')[n]);
    expect(reply.body).toMatchObject({ channel: CHANNEL, user: 'U0DEV' });
    expect(reply.body.text).toMatch(expected);
    return reply.body.text as string;
  };
  await ask('run gated target="unclosed', /^Could not read that command: unclosed " quote\.$/);
  await ask('run gated target', /"target" is not key=value/);
  await ask('frobnicate now', /^Unknown command "frobnicate"\. Commands:/);
  const unknown = await ask('run gatd target=x', /^Unknown flow type "gatd"\. Did you mean `gated`/);
  expect(unknown).toContain('Known: ');
  const invalid = await ask('run gated target=x timeoutHours=lots', /^Invalid parameters for gated:/);
  expect(invalid).toContain('timeoutHours: must be a number, got "lots"');
  expect(invalid).toContain('target (string, required)');
  const missing = await ask('run gated', /target/);
  expect(missing).toContain('Parameters of gated');
  await ask('run notifier repo=acme/nope', /Unknown project acme\/nope/);
  const help = await ask('help', /^Flowgate commands/);
  expect(help).toContain('run &lt;flowType&gt;');
  // A channel that is no project's default needs repo=.
  const elsewhere = { user: 'U0DEV', channel: 'C0ELSEWHERE' };
  await slack.command('run notifier', elsewhere);
  expect((await fake.waitFor('chat.postEphemeral', (b) => b.channel === 'C0ELSEWHERE')).body.text).toMatch(/^Which project\? Add repo=/);
  // Nothing of this started a run or posted a card.
  expect(fake.to('chat.postMessage', (b) => /`gatd`|acme\/nope/.test(JSON.stringify(b)))).toHaveLength(0);
});

test('a REST decision updates the Slack message: quorum progress first, then the outcome', async () => {
  await setGate('owner@acme.io', 'second@acme.io');
  const { card, request, runId, approvalId } = await gated('rest', '', 'U0DEV', 'gated-quorum');
  expect(blocksText(request)).toContain('0 of 2 approvals');
  const ownerToken = await createToken(server, { name: 'owner-rest', role: 'owner', email: 'owner@acme.io' });
  const r = await server.call('POST', `${FLOWS}/approvals/${approvalId}/approve`, { approver: 'Olivia', approverEmail: 'owner@acme.io' }, ownerToken);
  expect(r.body).toMatchObject({ status: 'pending', approvalsReceived: 1 });
  const vote = await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /1 of 2 approvals/.test(JSON.stringify(b.blocks)));
  expect(hasButtons(vote)).toBe(true);
  expect(blocksText(vote)).toContain('owner@acme.io');

  await slack.interaction(click('flowgate_approve', approvalId, 'U0SECOND', request, card));
  const done = await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /Approved/.test(JSON.stringify(b.blocks)));
  expect(hasButtons(done)).toBe(false);
  expect(blocksText(done)).toContain('2 of 2 approvals');
  expect((await waitForRun(server, runId)).status).toBe('Completed');
});

test('mentions: a run from a mention; status, approve and approvals in a thread; cancel', async () => {
  const { card, request, runId, approvalId } = await gated('mention');
  // `approvals`: what this person may decide.
  await slack.command('approvals', { user: 'U0OWNER', channel: CHANNEL });
  expect((await ephemeralTo('U0OWNER', /Pending approvals you can decide/)).body.text).toContain(approvalId);
  await slack.command('approvals', { user: 'U0MAL', channel: CHANNEL });
  expect((await ephemeralTo('U0MAL', /No pending approvals/)).body.text).toBe('No pending approvals you can decide.');
  // `status` in the run's thread finds the run.
  await slack.event(mentionEvent({ text: '<@U0BOT> status', user: 'U0DEV', channel: CHANNEL, threadTs: card.response.ts }));
  expect((await ephemeralTo('U0DEV', /gated run/)).body).toMatchObject({ thread_ts: card.response.ts, text: `gated run ${runId}: suspended` });
  // `approve` in the thread decides its approval.
  await slack.event(mentionEvent({ text: '<@U0BOT> approve', user: 'U0SECOND', channel: CHANNEL, threadTs: card.response.ts }));
  await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /Approved/.test(JSON.stringify(b.blocks)));
  expect((await waitForRun(server, runId)).status).toBe('Completed');
  expect((await approvalOf(approvalId)).decisions).toEqual([expect.objectContaining({ email: 'second@acme.io', door: 'slack' })]);

  // cancel: the approval's message and the card show it.
  const other = await gated('cancel');
  await slack.command(`cancel ${other.runId}`, { user: 'U0MAL', channel: CHANNEL });
  expect((await ephemeralTo('U0MAL', /may not cancel/)).body.text).toContain('mallory@acme.io may not cancel runs of acme/app');
  await slack.command(`cancel ${other.runId}`, { user: 'U0DEV', channel: CHANNEL });
  expect((await ephemeralTo('U0DEV', /^Cancelled/)).body.text).toBe(`Cancelled gated run ${other.runId}.`);
  await fake.waitFor('chat.update', (b) => b.ts === other.request.response.ts && /Cancelled/.test(JSON.stringify(b.blocks)));
  const cardNow = await fake.waitFor('chat.update', (b) => b.ts === other.card.response.ts);
  expect(blocksText(cardNow)).toContain('*cancelled*');
  expect((await server.call('GET', `${FLOWS}/${other.runId}`)).body.status).toBe('Cancelled');
});

test('pause, resume and retry in a run\'s thread: the rules of run control, and a retry asks again in the same thread', async () => {
  const { card, request, runId, approvalId } = await gated('control');
  const inThread = (user: string, text: string) => slack.event(mentionEvent({ text: `<@U0BOT> ${text}`, user, channel: CHANNEL, threadTs: card.response.ts }));
  await inThread('U0MAL', 'pause');
  expect((await ephemeralTo('U0MAL', /may not pause/)).body.text).toContain('mallory@acme.io may not pause runs of acme/app');
  await inThread('U0DEV', 'pause');
  expect((await ephemeralTo('U0DEV', /^Paused/)).body).toMatchObject({ thread_ts: card.response.ts, text: `Paused gated run ${runId}: running steps finish, nothing new starts until it is resumed.` });
  expect((await server.call('GET', `/v1/workflow-runs/${runId}?project_id=acme/app`)).body.status).toBe('paused');
  await inThread('U0DEV', 'retry');
  expect((await ephemeralTo('U0DEV', /retried/)).body.text).toBe(`Run ${runId} is paused: only an ended run can be retried`);
  await inThread('U0DEV', 'resume');
  expect((await ephemeralTo('U0DEV', /^Resumed/)).body.text).toBe(`Resumed gated run ${runId}.`);

  // Rejected by mistake: `retry` starts the run again in this thread, and its approval is asked for again there.
  await inThread('U0OWNER', 'reject not this week');
  await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /Rejected/.test(JSON.stringify(b.blocks)));
  expect((await waitForRun(server, runId)).status).toBe('Failed');
  await inThread('U0MAL', 'retry');
  expect((await ephemeralTo('U0MAL', /may not retry/)).body.text).toContain('mallory@acme.io may not retry runs of acme/app');
  await inThread('U0DEV', 'retry');
  const retried = (await ephemeralTo('U0DEV', /^Retrying/)).body.text as string;
  const retryId = new RegExp(`^Retrying gated run ${runId} as run ([0-9a-f-]{36}): its completed steps are kept, the others run again\\.$`).exec(retried)![1];
  const again = await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && JSON.stringify(b.blocks ?? '').includes('Approval needed') && !JSON.stringify(b.blocks).includes(approvalId));
  const newApproval = again.body.blocks.find((b: any) => b.type === 'actions').elements[0].value as string;
  expect((await approvalOf(newApproval)).executionId).toBe(retryId);
  await inThread('U0OWNER', 'approve');
  expect((await waitForRun(server, retryId)).status).toBe('Completed');
  const audit = await server.call('GET', `/api/v1/audit?resource=run/${retryId}`);
  expect(audit.body.map((a: any) => [a.action, a.actor, a.door])).toContainEqual(['run.retried', 'dev@acme.io', 'slack']);
});

test('repo= names the project from any channel; the run talks back in that channel', async () => {
  await slack.command('run notifier repo=acme/other text="from elsewhere"', { user: 'U0DEV', channel: 'C0OTHER' });
  const card = await fake.waitFor('chat.postMessage', (b) => b.channel === 'C0OTHER' && !b.thread_ts);
  expect(card.body.text).toBe('Notifies its thread on acme/other, started by dev@acme.io: in progress');
  await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && b.text === 'from elsewhere');
  await fake.waitFor('chat.postMessage', (b) => b.thread_ts === card.response.ts && /^Notifies its thread completed/.test(b.text));
  expect((await waitForRun(server, runIdOf(card))).repositoryIdentifier).toBe('acme/other');
});

test('expiry edits the request too: buttons gone, expired without a decision', async () => {
  const { card, request } = await gated('expiry', 'timeoutHours=0.0003');
  const expired = await fake.waitFor('chat.update', (b) => b.ts === request.response.ts && /Expired/.test(JSON.stringify(b.blocks)));
  expect(hasButtons(expired)).toBe(false);
  expect(blocksText(expired)).toContain('without a decision');
  expect((await waitForRun(server, runIdOf(card))).error).toMatch(/approval expired/);
});

test('clicks arriving together for one person share one users.info lookup', async () => {
  fake.user('U0BURST', 'burst@acme.io', 'Bea Burst');
  const people = new SlackPeople(new WebClient('xoxb-test', { slackApiUrl: fake.apiUrl }), server.services.identities);
  const lookups = () => fake.calls.filter((c) => c.method === 'users.info' && c.body.user === 'U0BURST').length;
  const found = await Promise.all(Array.from({ length: 5 }, () => people.resolve('U0BURST')));
  expect(found).toEqual(Array(5).fill({ email: 'burst@acme.io', name: 'Bea Burst', as: 'Slack user U0BURST, by its profile email' }));
  expect(lookups()).toBe(1);
  await people.resolve('U0BURST');
  expect(lookups()).toBe(1);
});

test('/flowgate login: a one-time console link by DM to that person only; it signs them in once; the channel only hears that it was sent', async () => {
  const ephemeralsBefore = fake.to('chat.postEphemeral').length;
  expect((await slack.command('login', { user: 'U0OWNER', channel: CHANNEL })).status).toBe(200);
  const dm = await fake.waitFor('chat.postMessage', (b) => b.channel === fake.dmOf('U0OWNER') && /sign-in link/.test(b.text));
  expect(String(dm.body.unfurl_links)).toBe('false');
  const url = /<(http[^|>]+)\|/.exec(dm.body.text)![1];
  // Links are built on FLOWGATE_PUBLIC_URL (this test server's default, since it listens on a port of its own choosing).
  expect(url.startsWith(`${server.services.config.publicUrl}/console/login/link/`)).toBe(true);
  expect(new URL(url).pathname).toMatch(/^\/console\/login\/link\/[A-Za-z0-9_-]{43}$/);
  const said = await eventually(async () => fake.to('chat.postEphemeral').slice(ephemeralsBefore).find((c) => c.body.user === 'U0OWNER'));
  expect(said.body.channel).toBe(CHANNEL);
  expect(said.body.text).toContain('by direct message');
  // Nothing in the channel, the ephemeral answer or the delivery's record carries the secret.
  const secret = url.split('/').at(-1)!;
  expect(fake.to('chat.postMessage', (b) => b.channel === CHANNEL).some((c) => JSON.stringify(c.body).includes(secret))).toBe(false);
  expect(said.body.text).not.toContain(secret);
  const kept = await server.services.orm.em.fork().getConnection().execute(`select count(*)::int as n from inbound_deliveries where steps::text like ? or payload::text like ?`, [`%${secret}%`, `%${secret}%`]);
  expect(kept[0].n).toBe(0);

  const browser = new ConsoleClient(server.url);
  const confirm = await browser.page(new URL(url).pathname);
  expect(textOf(confirm.html)).toContain('Continue as owner@acme.io');
  expect((await browser.post('/console/login/link', { link: secret })).status).toBe(303);
  expect(textOf((await browser.page('/console')).html)).toContain('owner@acme.io');
  expect((await new ConsoleClient(server.url).get(new URL(url).pathname)).status).toBe(410);
});

test('/flowgate login from someone Flowgate cannot identify sends no link', async () => {
  const dmsBefore = fake.to('chat.postMessage', (b) => /sign-in link/.test(b.text ?? '')).length;
  expect((await slack.command('login', { user: 'U0NOBODY', channel: CHANNEL })).status).toBe(200);
  await eventually(async () => fake.to('chat.postEphemeral').find((c) => c.body.user === 'U0NOBODY'));
  expect(fake.to('chat.postMessage', (b) => /sign-in link/.test(b.text ?? '')).length).toBe(dmsBefore);
});

test('/flowgate login when no DM can be opened says so, and the link goes nowhere', async () => {
  // Known to Flowgate by an identity link, unknown to Slack's conversations.open.
  expect((await server.call('PUT', '/api/v1/identities/ghost@acme.io', { slackUserId: 'U0GHOST' })).status).toBeLessThan(300);
  const posted = fake.to('chat.postMessage').length;
  expect((await slack.command('login', { user: 'U0GHOST', channel: CHANNEL })).status).toBe(200);
  const said = await eventually(async () => fake.to('chat.postEphemeral').find((c) => c.body.user === 'U0GHOST'));
  expect(said.body.text).toMatch(/could not send you a direct message .*no sign-in link was sent/);
  expect(said.body.text).not.toMatch(/login\/link/);
  expect(fake.to('chat.postMessage')).toHaveLength(posted);
});
