import { randomUUID } from 'node:crypto';
import { Approval } from '../../src/db/entities/approval.js';
import { commentPayload, deliver } from '../fakes/github.js';
import { mentionEvent, SlackSender, type SlackCall } from '../fakes/slack.js';
import { DOOR_SECRETS, startWithAllDoors, type AllDoors } from '../support/all-doors.js';
import { Recorder } from '../support/recorder.js';
import { createProject, createToken, eventually, waitForRun } from '../support/server.js';

// Who may cancel and what a thread command may decide: one set of rules for REST and every door.
const FLOWS = '/sfp/api/flows';
const CHANNEL = 'C0SEC';
const OTHER_CHANNEL = 'C0EVIL';
let doors: AllDoors;
let slack: SlackSender;
const target = new Recorder();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await target.start();
  doors = await startWithAllDoors();
  doors.github.installations.set('acme/app', 7);
  doors.slack.user('U0OWNER', 'owner@acme.io', 'Olivia Owner').user('U0DEV', 'dev@acme.io', 'Dev Eloper');
  slack = new SlackSender(doors.server.url, DOOR_SECRETS.slack);
  const server = doors.server;
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'], slackChannel: CHANNEL });
  // A project the same owner owns too: their decisions would count there, so a misdirected one would land.
  await createProject(server, 'acme/evil', { owners: ['owner@acme.io', 'mallory@acme.io'], slackChannel: OTHER_CHANNEL });
  for (const [email, githubLogin] of [['owner@acme.io', 'octo-owner'], ['dev@acme.io', 'octo-dev']])
    expect((await server.call('PUT', `/api/v1/identities/${email}`, { githubLogin })).status).toBe(201);
  tokens.ci = await createToken(server, { name: 'ci', role: 'application', projects: ['acme/app'] });
  tokens.dev = await createToken(server, { name: 'dev', role: 'member', email: 'dev@acme.io' });
  tokens.owner = await createToken(server, { name: 'olivia', role: 'owner', email: 'owner@acme.io' });
});
afterAll(async () => {
  await doors?.stop();
  await target.stop();
});

const call = (method: string, path: string, body?: unknown, token?: string) => doors.server.call(method, path, body, token);
const approvalRow = async (id: string) => (await call('GET', `${FLOWS}/approvals/${id}`)).body;
const startWaiter = async (token?: string) => {
  const r = await call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'acme/app' } }, token);
  expect(r.status).toBe(201);
  await waitForRun(doors.server, r.body.id, ['Waiting']);
  return r.body.id as string;
};
/**
 * An approval of acme/evil whose chat coordinates are a thread of acme/app. Flowgate refuses such
 * callbacks when opening approvals now; the row stands for one from before, or any other way in.
 */
async function foreignApproval(chat: Approval['chat']): Promise<Approval> {
  const now = new Date();
  const a = Object.assign(new Approval(), {
    id: randomUUID(), taskId: 'evil-task', engine: 'hatchet', repositoryIdentifier: 'acme/evil', requestedBy: 'mallory@acme.io', approvers: null,
    quorum: 1, allowSelfApproval: false, context: {}, callback: { type: chat.slack ? 'slack' : 'github', ...chat }, chat, status: 'pending' as const,
    decisions: [], requestedAt: now, expiresAt: new Date(now.getTime() + 3_600_000),
  });
  await doors.server.services.orm.em.fork().insert(Approval, a);
  return a;
}
const auditOf = async (runId: string) => doors.server.services.audit.list({ targetType: 'run', targetId: runId });

describe('cancel and rerun over REST follow the core rule', () => {
  test('an application token cannot cancel a run it did not start: 403, nothing changed, audited', async () => {
    const runId = await startWaiter();
    const refused = await call('POST', `${FLOWS}/${runId}/cancel`, undefined, tokens.ci);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/Token "ci" may not cancel run of acme\/app/);
    expect((await call('GET', `${FLOWS}/${runId}`)).body.status).toBe('Waiting');
    const refusal = (await auditOf(runId)).find((a) => a.action === 'run.cancel_refused');
    expect(refusal).toMatchObject({ actor: 'token:ci', door: 'rest' });
    // The same rule for cancelling its children and for a rerun.
    expect((await call('POST', `${FLOWS}/${runId}/cancel-children`, undefined, tokens.ci)).status).toBe(403);
    expect((await auditOf(runId)).map((a) => a.action)).not.toContain('run.cancelled');

    // A member of the project may.
    const cancelled = await call('POST', `${FLOWS}/${runId}/cancel`, undefined, tokens.dev);
    expect(cancelled.status).toBe(200);
    expect((await call('GET', `${FLOWS}/${runId}`)).body.status).toBe('Cancelled');
    expect((await call('POST', `${FLOWS}/${runId}/rerun`, {}, tokens.ci)).status).toBe(403);
  });

  test('an application token may cancel and rerun the runs it started itself', async () => {
    const own = await startWaiter(tokens.ci);
    expect((await call('POST', `${FLOWS}/${own}/cancel`, undefined, tokens.ci)).status).toBe(200);
    const again = await call('POST', `${FLOWS}/${own}/rerun`, {}, tokens.ci);
    expect(again.status).toBe(201);
    expect((await call('GET', `${FLOWS}/${again.body.id}`)).body.triggeredBy).toBe('app:ci');
    expect((await call('POST', `${FLOWS}/${again.body.id}/cancel`, undefined, tokens.ci)).status).toBe(200);
  });
});

/** Starts `gated-release` with two items and waits until both children's approvals are pending; returns their ids. */
async function twoPending(runId: string): Promise<string[]> {
  const view = await eventually(async () => {
    const v = (await call('GET', `${FLOWS}/approvals/${runId}`)).body;
    return v.children?.length === 2 && v.children.every((c: any) => c.approval?.status === 'pending') ? v : undefined;
  });
  return view.children.map((c: any) => c.approval.id);
}

const untouched = async (ids: string[]) => {
  for (const id of ids) expect(await approvalRow(id)).toMatchObject({ status: 'pending', decisions: [] });
};

test('REST approve by a run id with two pending approvals: 409 listing them, nothing decided', async () => {
  const r = await call('POST', `${FLOWS}/run`, { payload: { id: 'gated-release', repositoryIdentifier: 'acme/app', items: ['a', 'b'], target: target.url } }, tokens.dev);
  expect(r.status).toBe(201);
  const ids = await twoPending(r.body.id);
  const answer = await call('POST', `${FLOWS}/approvals/${r.body.id}/approve`, { approver: 'Olivia', approverEmail: 'owner@acme.io' }, tokens.owner);
  expect(answer.status).toBe(409);
  expect(answer.body.message).toMatch(/2 pending approvals; decide one by its id/);
  expect(answer.body.pendingApprovals.map((a: any) => a.id).sort()).toEqual([...ids].sort());
  await untouched(ids);
  // Named by its own id, one is decided.
  expect((await call('POST', `${FLOWS}/approvals/${ids[0]}/approve`, { approver: 'Olivia', approverEmail: 'owner@acme.io' }, tokens.owner)).body.status).toBe('approved');
  await untouched([ids[1]]);
  expect((await call('POST', `${FLOWS}/${r.body.id}/cancel`, undefined, tokens.dev)).status).toBe(200);
});

describe('GitHub threads', () => {
  let issues = 500;
  const say = (issueNumber: number, login: string, body: string) => deliver(doors.server.url, DOOR_SECRETS.github, 'issue_comment', commentPayload({ issueNumber, login, body }));
  const posted = (issueNumber: number, re: RegExp) =>
    eventually(async () => doors.github.commentsOn('acme/app', issueNumber).find((c) => re.test(c.body)), 20_000, `comment ${re} on #${issueNumber}`);

  test('two pending approvals in one issue: /approve answers with the list and decides nothing; /approve <id> decides that one', async () => {
    const issue = ++issues;
    await say(issue, 'octo-dev', `/flowgate run gated-release items=a,b target=${target.url}`);
    const started = await posted(issue, /started `gated-release` run/);
    const runId = /run `([0-9a-f-]{36})`/.exec(started.body)![1];
    const ids = await twoPending(runId);
    await eventually(async () => (doors.github.commentsOn('acme/app', issue).filter((c) => /Approval needed/.test(c.body)).length === 2 ? true : undefined));

    await say(issue, 'octo-owner', '/approve');
    const listed = await posted(issue, /2 pending approval requests, so nothing was decided/);
    for (const id of ids) expect(listed.body).toContain(`/approve ${id}`);
    await untouched(ids);

    await say(issue, 'octo-owner', `/approve ${ids[1]}`);
    await eventually(async () => ((await approvalRow(ids[1])).status === 'approved' ? true : undefined));
    await untouched([ids[0]]);
    // One pending left: a bare /approve means it.
    await say(issue, 'octo-owner', '/approve looks good');
    expect((await waitForRun(doors.server, runId)).status).toBe('Completed');
  });

  test('a thread command never decides an approval of another project posted to the thread', async () => {
    const issue = ++issues;
    const foreign = await foreignApproval({ github: { repositoryIdentifier: 'acme/app', issueNumber: issue } });
    await say(issue, 'octo-owner', '/approve');
    await posted(issue, /there is no approval request in this thread/);
    expect(await approvalRow(foreign.id)).toMatchObject({ status: 'pending', decisions: [] });
    expect((await call('GET', `${FLOWS}/approvals/by-github/acme/app/${issue}`)).status).toBe(404);
    // Named by id from this thread, it is still not this thread's.
    await say(issue, 'octo-owner', `/approve ${foreign.id}`);
    await posted(issue, new RegExp(`approval ${foreign.id} is not a request of this thread`));
    expect(await approvalRow(foreign.id)).toMatchObject({ status: 'pending', decisions: [] });

    // With a request of its own in the thread, that one is decided (the foreign one does not make it ambiguous).
    await say(issue, 'octo-dev', `/flowgate run gated target=${target.url}`);
    const started = await posted(issue, /started `gated` run/);
    const runId = /run `([0-9a-f-]{36})`/.exec(started.body)![1];
    await posted(issue, /Approval needed/);
    await say(issue, 'octo-owner', '/approve');
    expect((await waitForRun(doors.server, runId)).status).toBe('Completed');
    expect(await approvalRow(foreign.id)).toMatchObject({ status: 'pending', decisions: [] });
  });
});

describe('Slack threads', () => {
  const blocksText = (c: SlackCall) => JSON.stringify(c.body.blocks ?? []);
  const runIdOf = (card: SlackCall) => /Run `([0-9a-f-]{36})`/.exec(blocksText(card))![1];
  const ephemeralTo = (user: string, text: RegExp) => doors.slack.waitFor('chat.postEphemeral', (b) => b.user === user && text.test(b.text));

  async function card(command: string, tag: string) {
    expect((await slack.command(`${command} target=${target.url}/${tag}`, { user: 'U0DEV', channel: CHANNEL })).status).toBe(200);
    return doors.slack.waitFor('chat.postMessage', (b) => !b.thread_ts && JSON.stringify(b.blocks ?? '').includes(`/${tag}`));
  }

  test('two pending approvals in one thread: @Flowgate approve answers with the list and decides nothing', async () => {
    const top = await card('run gated-release items=a,b', 'two');
    const ids = await twoPending(runIdOf(top));
    await slack.event(mentionEvent({ text: '<@U0BOT> approve', user: 'U0OWNER', channel: CHANNEL, threadTs: top.response.ts }));
    const listed = await ephemeralTo('U0OWNER', /2 pending approval requests/);
    for (const id of ids) expect(listed.body.text).toContain(`@Flowgate approve ${id}`);
    await untouched(ids);
    await slack.event(mentionEvent({ text: `<@U0BOT> approve ${ids[0]}`, user: 'U0OWNER', channel: CHANNEL, threadTs: top.response.ts }));
    await eventually(async () => ((await approvalRow(ids[0])).status === 'approved' ? true : undefined));
    await untouched([ids[1]]);
    expect((await call('POST', `${FLOWS}/${runIdOf(top)}/cancel`)).status).toBe(200);
  });

  test('an approval of another project posted to the thread: approve in the thread decides only the thread\'s own', async () => {
    const top = await card('run gated', 'own');
    const runId = runIdOf(top);
    const own = (await eventually(async () => {
      const a = (await call('GET', `${FLOWS}/approvals/${runId}`)).body;
      return a?.status === 'pending' ? a : undefined;
    })).id as string;
    const foreign = (await foreignApproval({ slack: { channel: CHANNEL, threadTs: top.response.ts } })).id;
    await slack.event(mentionEvent({ text: '<@U0BOT> approve', user: 'U0OWNER', channel: CHANNEL, threadTs: top.response.ts }));
    expect((await waitForRun(doors.server, runId)).status).toBe('Completed');
    expect(await approvalRow(foreign)).toMatchObject({ status: 'pending', decisions: [] });
    expect((await approvalRow(own)).decisions).toEqual([expect.objectContaining({ email: 'owner@acme.io', door: 'slack' })]);
  });

  test('a run cancelled over REST updates its Slack card, its approval message and its thread', async () => {
    const top = await card('run gated', 'restcancel');
    const runId = runIdOf(top);
    const request = await doors.slack.waitFor('chat.postMessage', (b) => b.thread_ts === top.response.ts && /Approval needed/.test(JSON.stringify(b.blocks ?? '')));
    expect((await call('POST', `${FLOWS}/${runId}/cancel`, undefined, tokens.owner)).status).toBe(200);
    const cardNow = await doors.slack.waitFor('chat.update', (b) => b.ts === top.response.ts && /\*cancelled\*/.test(JSON.stringify(b.blocks ?? '')));
    expect(blocksText(cardNow)).toContain('*cancelled*');
    await doors.slack.waitFor('chat.update', (b) => b.ts === request.response.ts && /Cancelled/.test(JSON.stringify(b.blocks ?? '')));
    await doors.slack.waitFor('chat.postMessage', (b) => b.thread_ts === top.response.ts && /cancelled/.test(b.text ?? ''));
    // Once: one card edit for the cancellation.
    expect(doors.slack.to('chat.update', (b) => b.ts === top.response.ts && /\*cancelled\*/.test(JSON.stringify(b.blocks ?? '')))).toHaveLength(1);
  });
});
