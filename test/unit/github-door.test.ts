import { createHmac } from 'node:crypto';
import { routeEvent } from '../../src/doors/github/events.js';
import { paramsFromIssueBody } from '../../src/doors/github/issue-params.js';
import { RepoPermissions } from '../../src/doors/github/permission.js';
import { signPayload, verifySignature } from '../../src/doors/github/verify.js';
import { commentPayload, issuePayload, signDelivery } from '../fakes/github.js';

describe('signature', () => {
  const body = Buffer.from('{"zen":"Design for failure."}');
  const sign = (secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

  test('the HMAC of the raw bytes with the current or the previous secret', () => {
    expect(signPayload('current-secret-0123456789', body)).toBe(sign('current-secret-0123456789'));
    expect(signDelivery('s', body.toString())).toBe(signPayload('s', body));
    expect(verifySignature(body, sign('current-secret-0123456789'), ['current-secret-0123456789', 'previous-secret-0123456789'])).toBe(true);
    expect(verifySignature(body, sign('previous-secret-0123456789'), ['current-secret-0123456789', 'previous-secret-0123456789'])).toBe(true);
    expect(verifySignature(body, sign('previous-secret-0123456789').toUpperCase().replace('SHA256=', 'sha256='), ['previous-secret-0123456789'])).toBe(true);
  });

  test('anything else is refused', () => {
    const secrets = ['current-secret-0123456789'];
    expect(verifySignature(body, undefined, secrets)).toBe(false);
    expect(verifySignature(body, '', secrets)).toBe(false);
    expect(verifySignature(body, sign('another-secret-0123456789'), secrets)).toBe(false);
    expect(verifySignature(Buffer.from(`${body} `), sign('current-secret-0123456789'), secrets)).toBe(false);
    expect(verifySignature(body, `sha1=${'0'.repeat(40)}`, secrets)).toBe(false);
    expect(verifySignature(body, 'sha256=abc', secrets)).toBe(false);
    expect(verifySignature(body, sign('current-secret-0123456789'), [])).toBe(false);
  });
});

describe('events', () => {
  test('a comment keeps what the door needs; the commenter\'s association decides', () => {
    const routed = routeEvent('issue_comment', commentPayload({ issueNumber: 7, login: 'octo', userId: 583231, body: '/status', association: 'MEMBER', commentId: 99, pullRequest: true }));
    expect(routed).toEqual({ event: {
      kind: 'comment', repositoryIdentifier: 'acme/app', issueNumber: 7, isPullRequest: true, issueUrl: 'https://github.example/acme/app/issues/7',
      login: 'octo', userId: 583231, association: 'MEMBER', installationId: 7, commentId: 99, body: '/status',
    } });
  });

  test('bots, edits and other events are ignored', () => {
    expect(routeEvent('issue_comment', commentPayload({ login: 'flowgate[bot]', body: '/approve', bot: true }))).toEqual({ ignored: 'comment by a bot' });
    expect(routeEvent('issue_comment', { ...commentPayload({ login: 'a', body: '/approve' }), action: 'edited' })).toEqual({ ignored: 'issue_comment.edited' });
    expect(routeEvent('issues', { ...issuePayload({ action: 'opened', issueNumber: 1, login: 'a', body: '', labels: [] }), action: 'closed' })).toEqual({ ignored: 'issues.closed' });
    expect(routeEvent('push', { ref: 'refs/heads/main' })).toEqual({ ignored: 'push: not an issue event' });
    expect(routeEvent('issue_comment', null)).toEqual({ ignored: 'issue_comment: not an issue event' });
    // People are keyed by their numeric id: a sender without one is not acted on.
    const noId = commentPayload({ login: 'a', body: '/approve' });
    expect(routeEvent('issue_comment', { ...noId, sender: { login: 'a', type: 'User' } })).toEqual({ ignored: 'issue_comment: not an issue event' });
    expect(routeEvent('issue_comment', { ...noId, sender: { login: 'a', id: '12', type: 'User' } })).toEqual({ ignored: 'issue_comment: not an issue event' });
  });

  test('opened carries every label, labeled the one added', () => {
    const opened = routeEvent('issues', issuePayload({ action: 'opened', issueNumber: 3, login: 'a', body: 'b', labels: ['x', 'y'] }));
    expect(opened).toMatchObject({ event: { kind: 'issue', action: 'opened', labels: ['x', 'y'], body: 'b', association: 'MEMBER' } });
    const labeled = routeEvent('issues', issuePayload({ action: 'labeled', issueNumber: 3, login: 'a', body: 'b', labels: ['x', 'y'], added: 'y' }));
    expect(labeled).toMatchObject({ event: { kind: 'issue', action: 'labeled', labels: ['y'] } });
  });
});

describe('issue parameters', () => {
  test('the first ```json block, values as key=value strings for the shared coercion', () => {
    expect(paramsFromIssueBody('Hi\n\n```json\n{"username": "dev", "durationMinutes": 30, "approvers": ["a@b.c"], "dry": true, "skip": null}\n```\n\n```json\n{"no": 1}\n```')).toEqual({
      params: { username: 'dev', durationMinutes: '30', approvers: '["a@b.c"]', dry: 'true' },
    });
    expect(paramsFromIssueBody('~~~JSON\r\n{"a": "b"}\r\n~~~')).toEqual({ params: { a: 'b' } });
  });

  test('problems are named', () => {
    expect(paramsFromIssueBody('no block')).toEqual({ problem: 'The issue body has no ```json block with the flow\'s parameters.' });
    expect(paramsFromIssueBody('```json\n{"a": }\n```')).toMatchObject({ problem: expect.stringMatching(/^The ```json block is not valid JSON: /) });
    expect(paramsFromIssueBody('```json\n[1, 2]\n```')).toMatchObject({ problem: expect.stringMatching(/must hold an object/) });
    expect(paramsFromIssueBody('```js\n{"a": 1}\n```')).toMatchObject({ problem: expect.stringMatching(/no ```json block/) });
  });
});

describe('repository permissions', () => {
  test('cached per repository and user id for the TTL; failures are not cached', async () => {
    let clock = 0;
    const calls: string[] = [];
    const answers: (string | Error)[] = ['write', 'read', new Error('HTTP 502'), 'admin'];
    const permissions = new RepoPermissions(async (repo, login) => {
      calls.push(`${repo}:${login}`);
      const next = answers.shift()!;
      if (next instanceof Error) throw next;
      return next;
    }, 60_000, () => clock);
    expect(await permissions.roleOf('acme/app', 'octo', 1)).toBe('write');
    // Same user under a new login, and a different case of the repository: the cached answer.
    expect(await permissions.roleOf('ACME/app', 'octo-renamed', 1)).toBe('write');
    expect(await permissions.roleOf('acme/app', 'other', 2)).toBe('read');
    expect(calls).toEqual(['acme/app:octo', 'acme/app:other']);
    clock = 60_000;
    await expect(permissions.roleOf('acme/app', 'octo', 1)).rejects.toThrow('HTTP 502');
    expect(await permissions.roleOf('acme/app', 'octo', 1)).toBe('admin');
    expect(calls).toHaveLength(4);
  });
});
