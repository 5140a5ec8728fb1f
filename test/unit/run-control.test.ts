import type { Principal } from '../../src/core/identity/principal.js';
import { controlRefusal, startedByOf } from '../../src/core/runs/run-permissions.js';
import { parseComment, parseWords } from '../../src/doors/commands.js';

const project = { owners: ['owner@acme.io'], members: ['dev@acme.io'] };
const run = (triggeredBy: string, requestedBy: string | null = null) => ({ repositoryIdentifier: 'acme/app', triggeredBy, requestedBy });
const token = (p: Partial<Principal>): Principal => ({ tokenId: 't', name: 'ci', role: 'application', email: null, projects: null, ...p });
const rest = (p: Partial<Principal>) => ({ principal: token(p), door: 'rest' });
const person = (email: string) => ({ person: { email }, door: 'slack' });

describe('who may cancel or rerun a run (one rule for REST and every door)', () => {
  test('people: the project\'s owners and members and the starter; nobody else', () => {
    expect(controlRefusal(run('someone@acme.io'), person('Owner@acme.io'), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('someone@acme.io'), person('dev@acme.io'), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('someone@acme.io'), person('someone@acme.io'), project, 'rerun')).toBeUndefined();
    // A scheduled run: its author counts as its starter.
    expect(controlRefusal(run('cron', 'author@acme.io'), person('author@acme.io'), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('someone@acme.io'), person('mallory@acme.io'), project, 'cancel')).toBe(
      'mallory@acme.io may not cancel runs of acme/app: only its project\'s owners and members, the person who started it, or the token that started it can cancel a run');
    // Without the project (deleted), only the starter.
    expect(controlRefusal(run('someone@acme.io'), person('owner@acme.io'), null, 'cancel')).toMatch(/may not cancel/);
  });

  test('tokens: owners with access; the person a token acts for; a token without a person only for its own runs', () => {
    expect(controlRefusal(run('someone@acme.io'), rest({ role: 'owner', name: 'admin' }), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('someone@acme.io'), rest({ role: 'owner', projects: ['acme/other'] }), project, 'cancel')).toMatch(/not allowed to access project acme\/app/);
    expect(controlRefusal(run('someone@acme.io'), rest({ role: 'member', email: 'dev@acme.io' }), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('someone@acme.io'), rest({ role: 'application', email: 'someone@acme.io' }), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('app:ci'), rest({ name: 'ci' }), project, 'cancel')).toBeUndefined();
    expect(controlRefusal(run('app:deployer'), rest({ name: 'ci' }), project, 'cancel')).toMatch(/^Token "ci" may not cancel run of acme\/app started by app:deployer/);
    expect(controlRefusal(run('someone@acme.io'), rest({ role: 'member', name: 'bot' }), project, 'rerun')).toMatch(/may not rerun/);
    expect(controlRefusal(run('app:ci'), rest({ name: 'ci', runId: 'r1' }), project, 'cancel')).toMatch(/execution token/);
    expect(controlRefusal(run('app:ci'), rest({ name: 'ci', role: 'viewer' as Principal['role'] }), project, 'cancel')).toMatch(/may only read/);
    expect(startedByOf(token({ name: 'ci' }))).toBe('app:ci');
    expect(startedByOf(token({ email: 'a@acme.io' }))).toBe('a@acme.io');
  });
});

describe('thread commands may name the approval they decide', () => {
  const id = '0192f0c4-5b7e-7a3c-9d2e-4f1a2b3c4d5e';
  test('approve [<id>]: an id is recognised by its shape; other words after /approve are a remark', () => {
    expect(parseComment(`/approve ${id}`)).toEqual({ kind: 'command', command: { name: 'approve', approvalId: id } });
    expect(parseComment(`/approve \`${id.toUpperCase()}\``)).toEqual({ kind: 'command', command: { name: 'approve', approvalId: id } });
    expect(parseComment('/approve LGTM')).toEqual({ kind: 'command', command: { name: 'approve' } });
    expect(parseWords(`approve ${id}`)).toEqual({ kind: 'command', command: { name: 'approve', approvalId: id } });
  });

  test('reject [<id>] <reason>: the reason is still required', () => {
    expect(parseComment(`/reject ${id} not now`)).toEqual({ kind: 'command', command: { name: 'reject', reason: 'not now', approvalId: id } });
    expect(parseWords('reject not now')).toEqual({ kind: 'command', command: { name: 'reject', reason: 'not now' } });
    expect(parseWords(`reject ${id}`)).toEqual({ kind: 'reply', text: 'Say why: reject [<approvalId>] <reason>' });
  });
});

test('pause, resume and retry parse like cancel, with an optional run id', () => {
  expect(parseWords('retry')).toEqual({ kind: 'command', command: { name: 'retry' } });
  expect(parseComment('/flowgate retry 0192-run')).toEqual({ kind: 'command', command: { name: 'retry', runId: '0192-run' } });
  expect(parseWords('retry a b')).toEqual({ kind: 'reply', text: 'Usage: retry [<runId>]' });
  expect(parseWords('pause')).toEqual({ kind: 'command', command: { name: 'pause' } });
  expect(parseWords('Resume 0192-run')).toEqual({ kind: 'command', command: { name: 'resume', runId: '0192-run' } });
  expect(parseWords('pause a b')).toEqual({ kind: 'reply', text: 'Usage: pause [<runId>]' });
  expect(parseComment('/flowgate pause 0192-run')).toEqual({ kind: 'command', command: { name: 'pause', runId: '0192-run' } });
});
