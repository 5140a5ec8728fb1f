import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { presentApproval } from '../../src/core/approvals/present-approval.js';
import type { NoticeRun } from '../../src/core/notify/notice.js';
import { Approval, type Decision } from '../../src/db/entities/approval.js';
import { approvalMessage, approvalsList, helpText, rejectModal, runCard, runFinishedReply, signInLinkMessage } from '../../src/doors/slack/messages.js';

// What users see in Slack, exactly: each builder's output is compared with a golden file in
// test/golden/slack/. After an intended change, regenerate with UPDATE_GOLDEN=1 and review the diff.
// (Pure functions: no server, no database.)
const GOLDEN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../golden/slack');

function golden(name: string, value: unknown) {
  const file = path.join(GOLDEN, `${name}.json`);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, text);
  }
  expect(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : `(missing ${file}; run with UPDATE_GOLDEN=1)`).toBe(text);
}

const FLOW = { id: 'request-elevated-privileges', name: 'Request Elevated Privileges' };
const RUN_ID = '0196a3c2-5b1e-7c3d-8e4f-a1b2c3d4e5f6';
const REQUESTED = '2026-11-22T09:30:00.000Z';
const run: NoticeRun = {
  id: RUN_ID, taskType: FLOW.id, status: 'suspended', triggeredBy: 'dev@acme.io', repositoryIdentifier: 'acme/app',
  payload: { id: FLOW.id, username: 'dev', durationMinutes: 30, reason: 'incident 42 <db restore>', approvers: [] },
  startedAt: REQUESTED, finishedAt: null, error: null, result: {},
};

const vote = (email: string, name: string, verdict: 'approve' | 'reject', at: string, reason: string | null = null): Decision => ({ email, name, verdict, reason, door: 'slack', at });

function approval(fields: Partial<Approval> = {}) {
  const a = Object.assign(new Approval(), {
    id: '0196a3c2-6000-7000-8000-000000000001', runId: RUN_ID, stepRef: 'approve', repositoryIdentifier: 'acme/app',
    requestedBy: 'dev@acme.io', approvers: null, quorum: 1, allowSelfApproval: false,
    message: 'dev@acme.io requests elevated access for dev (30 min): incident 42 <db restore>',
    context: { taskType: FLOW.id, username: 'dev', durationMinutes: 30 },
    callback: { type: 'slack', slack: { channel: 'C0OPS', threadTs: '1700000000.000100' } },
    chat: { slack: { channel: 'C0OPS', threadTs: '1700000000.000100', messageTs: '1700000000.000200' } },
    status: 'pending', decisions: [], requestedAt: new Date(REQUESTED), expiresAt: new Date('2026-11-23T09:30:00.000Z'),
  }, fields);
  return presentApproval(a, null);
}

describe('approval request', () => {
  test('pending, decided by the project owners', () => golden('approval-pending', approvalMessage(approval(), FLOW, run)));

  test('pending with a vote toward a quorum of 2', () => golden('approval-pending-quorum', approvalMessage(approval({
    approvers: ['owner@acme.io', 'second@acme.io', 'lead@acme.io'], quorum: 2,
    decisions: [vote('owner@acme.io', 'Olivia Owner', 'approve', '2026-11-22T09:35:00.000Z')],
  }), FLOW, run)));

  test('approved', () => golden('approval-approved', approvalMessage(approval({
    status: 'approved', resolvedBy: 'owner@acme.io', resolvedAt: new Date('2026-11-22T09:40:00.000Z'),
    decisions: [vote('owner@acme.io', 'Olivia Owner', 'approve', '2026-11-22T09:40:00.000Z')],
  }), FLOW, run)));

  test('rejected, with the reason (escaped)', () => golden('approval-rejected', approvalMessage(approval({
    status: 'rejected', resolvedBy: 'owner@acme.io', resolvedAt: new Date('2026-11-22T09:41:00.000Z'), reason: 'not during the freeze\nask again <Monday>',
    decisions: [vote('owner@acme.io', 'Olivia Owner', 'reject', '2026-11-22T09:41:00.000Z', 'not during the freeze\nask again <Monday>')],
  }), FLOW, run)));

  test('expired', () => golden('approval-expired', approvalMessage(approval({ status: 'expired', resolvedAt: new Date('2026-11-23T09:30:00.000Z') }), FLOW, run)));

  test('cancelled with its run', () => golden('approval-cancelled', approvalMessage(approval({
    status: 'cancelled', resolvedBy: 'dev@acme.io', resolvedAt: new Date('2026-11-22T09:45:00.000Z'),
  }), FLOW, run)));

  test('the modal asking why it is rejected', () => golden('reject-modal', rejectModal(approval(), FLOW)));
});

describe('run', () => {
  test('the card heading the thread, while the run is under way', () => golden('run-card', runCard({ ...run, status: 'queued', startedAt: null }, FLOW)));

  const completed = { ...run, status: 'completed', finishedAt: '2026-11-22T10:12:34.000Z', result: { user: 'dev', grantedFor: 30, revoked: true, log: 'https://ci.acme.io/runs/42' } };
  test('the card once the run completed', () => golden('run-card-completed', runCard(completed, FLOW)));
  test('the result posted in the thread', () => golden('run-finished-completed', runFinishedReply(completed, FLOW)));
  test('a failed run', () => golden('run-finished-failed', runFinishedReply({
    ...run, status: 'failed', finishedAt: '2026-11-22T09:41:02.000Z', error: 'step approve: approval rejected by owner@acme.io: not during the freeze',
  }, FLOW)));
});

describe('private replies', () => {
  test('approvals you can decide', () => golden('approvals-list', approvalsList([
    { approval: approval(), flow: FLOW },
    { approval: approval({ id: '0196a3c2-6000-7000-8000-000000000002', quorum: 2, approvers: ['owner@acme.io', 'lead@acme.io'], decisions: [vote('lead@acme.io', 'Lead', 'approve', REQUESTED)], chat: {} }), flow: { id: 'release', name: 'Release' } },
  ])));
  test('none to decide', () => expect(approvalsList([])).toEqual({ text: 'No pending approvals you can decide.' }));
  test('help', () => golden('help', { text: helpText('/flowgate') }));
  test('the sign-in link, by DM', () => golden('sign-in-link', signInLinkMessage('https://flowgate.acme.io/console/login/link/abc', new Date('2026-11-23T09:10:00.000Z'))));
});
