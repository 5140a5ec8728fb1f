import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseComment } from '../../src/doors/commands.js';
import { inert } from '../../src/doors/github/inert.js';
import {
  renderApproval, renderHelp, renderReply, renderRunFinished, renderRunMessage, renderRunStarted, renderUnlinked, type ApprovalView, type RunView,
} from '../../src/doors/github/render.js';

// What people read on GitHub, reviewed as files: test/golden/github/*.md (UPDATE_GOLDEN=1 rewrites them).
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../golden/github');

function golden(name: string, text: string) {
  const file = path.join(dir, `${name}.md`);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, `${text}\n`);
  expect(`${text}\n`).toBe(fs.readFileSync(file, 'utf8'));
  // Flowgate's own comments never carry a command a parser would act on.
  expect(parseComment(text)).toEqual({ kind: 'ignore' });
}

const dev = { email: 'dev@acme.io', login: 'dev-gh' };
const lead = { email: 'lead@acme.io', login: 'lead-gh' };
const ops = { email: 'ops@acme.io', login: null };
const pending: ApprovalView = {
  id: '0193a4b2-0000-7000-8000-000000000001', runId: '0193a4b2-0000-7000-8000-0000000000aa', taskType: 'request-elevated-privileges',
  repositoryIdentifier: 'acme/app', status: 'pending', requestedBy: dev,
  message: 'dev@acme.io requests elevated access for dev (30 min): incident | 42',
  details: { username: 'dev', durationMinutes: 30 },
  approvers: [lead], approversSource: 'owners', quorum: 1, approvalsReceived: 0, allowSelfApproval: false,
  expiresAt: '2026-11-23T20:30:00.000Z', decisions: [],
};

test('approval request', () => golden('approval-pending', renderApproval(pending)));

test('approval with a vote towards a quorum of two', () => golden('approval-vote', renderApproval({
  ...pending, approvers: [lead, ops], approversSource: 'explicit', quorum: 2, approvalsReceived: 1,
  decisions: [{ who: lead, verdict: 'approve', at: '2026-11-22T20:40:00.000Z' }],
})));

test('approved', () => golden('approval-approved', renderApproval({
  ...pending, status: 'approved', approvalsReceived: 1, resolvedAt: '2026-11-22T20:41:00.000Z',
  decisions: [{ who: lead, verdict: 'approve', at: '2026-11-22T20:41:00.000Z' }],
})));

test('rejected, with the reason', () => golden('approval-rejected', renderApproval({
  ...pending, status: 'rejected', resolvedAt: '2026-11-22T20:42:00.000Z',
  decisions: [{ who: ops, verdict: 'reject', reason: 'not during the freeze', at: '2026-11-22T20:42:00.000Z' }],
})));

test('expired and cancelled', () => {
  golden('approval-expired', renderApproval({ ...pending, status: 'expired', resolvedAt: '2026-11-23T20:30:05.000Z' }));
  golden('approval-cancelled', renderApproval({ ...pending, status: 'cancelled', resolvedAt: '2026-11-22T21:00:00.000Z' }));
});

const run: RunView = {
  id: '0193a4b2-0000-7000-8000-0000000000aa', taskType: 'request-elevated-privileges', status: 'completed', triggeredBy: dev,
  startedAt: '2026-11-22T20:30:00.000Z', finishedAt: '2026-11-22T21:02:03.000Z', result: { user: 'dev', grantedFor: 30, revoked: true },
};

test('run results', () => {
  golden('run-completed', renderRunFinished(run));
  golden('run-failed', renderRunFinished({ ...run, status: 'failed', result: {}, error: 'step grant: POST ***/grant → 500', finishedAt: '2026-11-22T20:30:04.000Z' }));
  golden('run-cicd-completed', renderRunFinished({
    ...run, id: '0193a4b2-0000-7000-8000-0000000000bb', taskType: 'build-on-merge', triggeredBy: ops, result: { artifact: 'app-abc123.tgz' },
    cicdRunUrl: 'https://github.com/acme/app/actions/runs/123456',
  }));
});

test('replies', () => {
  golden('run-started', renderRunStarted('dev-gh', { id: run.id, taskType: run.taskType, status: 'queued' }));
  golden('run-message', renderRunMessage(run.taskType, run.id, 'Access granted to dev for 30 minutes'));
  golden('unlinked', renderUnlinked('stranger'));
  golden('help', renderHelp([
    { id: 'build-on-merge', description: 'Builds and validates the packages changed by a merge' },
    { id: 'request-elevated-privileges', description: 'Temporary elevated access | revoked automatically' },
  ]));
});

describe('text Flowgate did not write is inert', () => {
  const ZWJ = '\u200D';
  const hostile = '@acme/admins ![x](http://evil/x.png) <img src=x> <picture><source srcset=y></picture> [docs](https://evil/) fixes #12 and acme/app#3, GH-4, &#64;team <!-- c --> www.evil.example <https://evil/a>';

  test('mentions, references, images, links, HTML, entities and bare URLs no longer work; the text reads the same', () => {
    const out = inert(hostile);
    expect(out.replaceAll(ZWJ, '')).toBe(hostile);
    for (const live of [/(^|[^\w])@acme/, /!\[/, /\]\(/, /<[a-z!/]/i, /#\d/, /GH-\d/, /&#\d/, /https?:\/\//, /www\./]) expect(out).not.toMatch(live);
    expect(inert(out)).toBe(out);
    // Emails and ordinary text are left alone.
    expect(inert('dev@acme.io approved (3 of 4) — see `x`')).toBe('dev@acme.io approved (3 of 4) — see `x`');
  });

  test('in approval comments, results, messages and replies; linked logins are still mentioned', () => {
    const approval = renderApproval({
      ...pending, message: `grant ${hostile}`, details: { '@acme/admins': '![x](http://evil/x.png)', 'note': '<img src=x>' },
      requestedBy: { email: '@acme/admins', login: null }, status: 'rejected', resolvedAt: '2026-11-22T20:42:00.000Z',
      decisions: [{ who: lead, verdict: 'reject', reason: 'ping @acme/admins', at: '2026-11-22T20:42:00.000Z' }],
    });
    const finished = renderRunFinished({ ...run, error: 'failed: <img src=x> @acme/admins', cicdRunUrl: 'javascript:alert(1) ![x](http://evil/x.png)' });
    for (const body of [approval, finished, renderRunMessage('t', 'r', hostile), renderReply('dev-gh', `Invalid parameters: ${hostile}`)]) {
      expect(body).not.toMatch(/(^|[^\w])@acme\/admins/);
      expect(body).not.toContain('![x](');
      expect(body).not.toMatch(/<img|<picture/);
      expect(body).not.toContain('](http');
    }
    expect(approval).toContain('rejected by @lead-gh (lead@acme.io)');
    expect(renderReply('dev-gh', 'ok')).toBe('@dev-gh ok');
    expect(renderRunFinished({ ...run, cicdRunUrl: 'https://github.com/acme/app/actions/runs/1' })).toContain('Pipeline run: https://github.com/acme/app/actions/runs/1');
    // A login that is not a GitHub login is not mentioned.
    expect(renderApproval({ ...pending, requestedBy: { email: 'x@acme.io', login: 'acme/admins' } })).toContain('| Requested by | x@acme.io |');
  });

  test('golden: an approval request carrying hostile parameters', () => golden('approval-hostile', renderApproval({
    ...pending, message: 'dev@acme.io requests access for @acme/admins ![x](http://evil/x.png)', details: { username: '@acme/admins <img src=http://evil/t.png>', ticket: '#12' },
  })));
});
