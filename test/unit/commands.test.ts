import { coerceParams, parseComment, parseWords, suggest, tokenize } from '../../src/doors/commands.js';
import { manifestSchema } from '../../src/core/registry/manifest-schema.js';

const def = manifestSchema.parse({
  id: 'release', name: 'Release', steps: [{ ref: 'a', type: 'log', with: { message: 'x' } }],
  parameters: [
    { name: 'domains', type: 'array', required: true }, { name: 'minutes', type: 'number' },
    { name: 'dryRun', type: 'boolean' }, { name: 'reason', type: 'string' }, { name: 'config', type: 'object' },
  ],
});

test('tokenize keeps quoted values together, including key="…" and smart quotes', () => {
  expect(tokenize('run x reason="db restore" note=\u201cfor ops\u201d a')).toEqual(['run', 'x', 'reason=db restore', 'note=for ops', 'a']);
  expect(tokenize('run "unclosed')).toEqual({ error: 'unclosed " quote' });
  expect(tokenize('a "" b')).toEqual(['a', '', 'b']);
});

test('run with repo and parameters; errors are replies, not exceptions', () => {
  expect(parseWords('run release repo=acme/app domains=core,sales reason="hot fix"')).toEqual({
    kind: 'command', command: { name: 'run', flowType: 'release', params: { domains: 'core,sales', reason: 'hot fix' }, repo: 'acme/app' },
  });
  expect(parseWords('run')).toMatchObject({ kind: 'reply', text: expect.stringMatching(/Which flow/) });
  expect(parseWords('run release oops')).toMatchObject({ kind: 'reply', text: expect.stringMatching(/"oops" is not key=value/) });
  expect(parseWords('run x a="b')).toMatchObject({ kind: 'reply', text: expect.stringMatching(/unclosed/) });
  expect(parseWords('deploy now')).toMatchObject({ kind: 'reply', text: expect.stringMatching(/Unknown command "deploy"/) });
  expect(parseWords('')).toEqual({ kind: 'command', command: { name: 'help' } });
  expect(parseWords('status 123')).toEqual({ kind: 'command', command: { name: 'status', runId: '123' } });
  expect(parseWords('cancel')).toEqual({ kind: 'command', command: { name: 'cancel' } });
  expect(parseWords('reject')).toMatchObject({ kind: 'reply' });
  expect(parseWords('reject not now')).toEqual({ kind: 'command', command: { name: 'reject', reason: 'not now' } });
  expect(parseWords('LOGIN')).toEqual({ kind: 'command', command: { name: 'login' } });
  expect(parseComment('/flowgate login')).toEqual({ kind: 'command', command: { name: 'login' } });
});

test('comment commands must start a line; quotes and mid-line mentions are ignored', () => {
  expect(parseComment('LGTM\n/approve')).toEqual({ kind: 'command', command: { name: 'approve' } });
  expect(parseComment('/reject   too risky today ')).toEqual({ kind: 'command', command: { name: 'reject', reason: 'too risky today' } });
  expect(parseComment('/flowgate run release domains=a')).toMatchObject({ kind: 'command', command: { name: 'run', flowType: 'release' } });
  expect(parseComment('/flowgate help')).toEqual({ kind: 'command', command: { name: 'help' } });
  expect(parseComment('/status')).toEqual({ kind: 'command', command: { name: 'status' } });
  expect(parseComment('I think we should /approve this')).toEqual({ kind: 'ignore' });
  expect(parseComment('> /approve\nquoted above')).toEqual({ kind: 'ignore' });
  expect(parseComment('/approved by someone')).toEqual({ kind: 'ignore' });
  expect(parseComment('plain text')).toEqual({ kind: 'ignore' });
});

test('parameters are coerced to the flow\'s types, problems named', () => {
  expect(coerceParams(def, { domains: 'core, sales', minutes: '30', dryRun: 'yes', reason: 'x', config: '{"a":1}', extra: 'kept' })).toEqual({
    params: { domains: ['core', 'sales'], minutes: 30, dryRun: true, reason: 'x', config: { a: 1 }, extra: 'kept' }, problems: [],
  });
  expect(coerceParams(def, { domains: '["a"]' }).params.domains).toEqual(['a']);
  expect(coerceParams(def, { minutes: 'soon', dryRun: 'maybe', config: '{', domains: '[1' }).problems).toEqual([
    'minutes: must be a number, got "soon"', 'dryRun: must be true or false, got "maybe"', 'config: must be a JSON object', 'domains: must be a JSON list or comma-separated values',
  ]);
});

test('suggestions for unknown flow types', () => {
  const known = ['request-elevated-privileges', 'release', 'build-domain', 'monitor-pool'];
  expect(suggest('relase', known)).toEqual(['release']);
  expect(suggest('request-elevated', known)).toEqual(['request-elevated-privileges']);
  expect(suggest('zzz', known)).toEqual([]);
});

test('a command inside a ``` or ~~~ fenced block is not a command; after the fence closes, lines count again', () => {
  expect(parseComment('To approve, write:\n```\n/approve\n```')).toEqual({ kind: 'ignore' });
  expect(parseComment('~~~text\n/reject nope\n~~~')).toEqual({ kind: 'ignore' });
  expect(parseComment('  ```sh\n/flowgate run release domains=a\n  ```')).toEqual({ kind: 'ignore' });
  // A shorter or different fence does not close the block; an unclosed block runs to the end.
  expect(parseComment('````\n```\n/approve\n````')).toEqual({ kind: 'ignore' });
  expect(parseComment('```\n~~~\n/approve')).toEqual({ kind: 'ignore' });
  expect(parseComment('```\n``` not a closing fence\n/approve')).toEqual({ kind: 'ignore' });
  expect(parseComment('```\nexample\n```\n/approve')).toEqual({ kind: 'command', command: { name: 'approve' } });
  // Backticks in the info string make it inline code, not a fence.
  expect(parseComment('``` `x` ```\n/approve')).toEqual({ kind: 'command', command: { name: 'approve' } });
});
