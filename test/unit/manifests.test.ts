import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifests, ManifestError, parseManifest } from '../../src/core/registry/load-manifests.js';
import { descendants, graphProblems } from '../../src/core/registry/graph.js';
import { durationSeconds, manifestSchema, stepSchema, type StepDefinition } from '../../src/core/registry/manifest-schema.js';
import { stepInputs, withKeyProblems } from '../../src/core/registry/step-inputs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const VALID = `
id: demo
name: Demo
parameters:
  - { name: target, required: true }
  - { name: count, type: number, default: 3, description: How many }
steps:
  - ref: first
    type: log
    with: { message: "hi {{ payload.target }}" }
  - ref: second
    type: sleep
    dependsOn: [first]
    timeout: 5m
    retry: 3
    with: { seconds: 1 }
  - ref: third
    type: http.request
    dependsOn: [first, second]
    if: payload.count > 1
    onFailure: continue
    retry: { attempts: 2 }
    with:
      url: "{{ payload.target }}/x"
      headers: { authorization: "Bearer {{ credentials.TOKEN }}" }
outputs:
  status: "{{ steps.third.output.status }}"
`;

/** A one-file manifest with the given steps block (YAML, indented two spaces). */
const manifest = (steps: string, extra = '') => `id: demo\nname: Demo\n${extra}steps:\n${steps}`;

function problems(text: string, file = 'bad.yaml'): string[] {
  const r = parseManifest(file, text);
  expect(r.definition).toBeUndefined();
  return r.problems;
}

describe('parseManifest: a valid manifest', () => {
  const r = parseManifest('demo.yaml', VALID);
  const def = r.definition!;

  test('has no problems', () => {
    expect(r.problems).toEqual([]);
    expect(def).toBeDefined();
  });

  test('top-level defaults are applied', () => {
    expect(def.id).toBe('demo');
    expect(def.name).toBe('Demo');
    expect(def.description).toBe('');
    expect(def.category).toBe('other');
    expect(def.executionMode).toBe('flow');
    expect(def.cicd).toBeUndefined();
    expect(def.outputs).toEqual({ status: '{{ steps.third.output.status }}' });
  });

  test('parameter defaults are applied', () => {
    expect(def.parameters).toEqual([
      { name: 'target', type: 'string', required: true, description: '' },
      { name: 'count', type: 'number', required: false, default: 3, description: 'How many' },
    ]);
  });

  test('step defaults are applied', () => {
    const first = def.steps[0];
    expect(first.dependsOn).toEqual([]);
    expect(first.onFailure).toBe('fail_workflow');
    expect(first.retry).toBeUndefined();
    expect(first.timeout).toBeUndefined();
    expect(first.if).toBeUndefined();
  });

  test('retry as a number and as an object', () => {
    expect(def.steps[1].retry).toEqual({ attempts: 3, backoffSeconds: 1, factor: 2 });
    expect(def.steps[2].retry).toEqual({ attempts: 2, backoffSeconds: 1, factor: 2 });
  });

  test('durations become seconds', () => {
    expect(def.steps[1].timeout).toBe(300);
  });

  test('credentials are allowed in http.request steps', () => {
    expect(def.steps[2].type).toBe('http.request');
    expect(def.steps[2].onFailure).toBe('continue');
    expect(def.steps[2].if).toBe('payload.count > 1');
  });

  test('a with block defaults to {} when the kind needs nothing required', () => {
    const r2 = parseManifest('w.yaml', manifest('  - { ref: a, type: notify, with: { message: hi } }\n  - { ref: b, type: log, with: { message: x } }\n'));
    expect(r2.problems).toEqual([]);
    // A sleep without a duration is caught at load time, not when the run gets there.
    const r3 = parseManifest('w.yaml', manifest('  - { ref: a, type: sleep }\n'));
    expect(r3.problems).toEqual(['w.yaml: steps[0].with.seconds: give exactly one of seconds, minutes or until']);
  });

  test('a cicd-mode manifest needs no steps', () => {
    const r2 = parseManifest('c.yaml', 'id: ci\nname: CI\nexecutionMode: cicd\ncicd: { provider: github-actions, workflow: build.yml }\n');
    expect(r2.problems).toEqual([]);
    expect(r2.definition!.steps).toEqual([]);
    expect(r2.definition!.cicd).toEqual({ provider: 'github-actions', workflow: 'build.yml' });
  });
});

describe('parseManifest: problems name the file and the field', () => {
  test('unknown dependency', () => {
    const text = manifest(
      '  - { ref: a, type: log, with: { message: hi } }\n  - { ref: b, type: log, dependsOn: [nope], with: { message: hi } }\n',
    );
    expect(problems(text)).toEqual(['bad.yaml: steps[1].dependsOn[0]: unknown step "nope"']);
  });

  test('unknown dependency at a later index', () => {
    const text = manifest(
      '  - { ref: a, type: log, with: { message: hi } }\n  - { ref: b, type: log, dependsOn: [a, ghost], with: { message: hi } }\n',
    );
    expect(problems(text, 'x.yml')).toEqual(['x.yml: steps[1].dependsOn[1]: unknown step "ghost"']);
  });

  test('duplicate step refs', () => {
    const text = manifest('  - { ref: a, type: log, with: { message: hi } }\n  - { ref: a, type: log, with: { message: again } }\n');
    expect(problems(text)).toEqual(['bad.yaml: steps[1].ref: duplicate step ref "a"']);
  });

  test('a step depending on itself', () => {
    const text = manifest('  - { ref: a, type: log, dependsOn: [a], with: { message: hi } }\n');
    expect(problems(text)).toEqual(['bad.yaml: steps[0].dependsOn[0]: a step cannot depend on itself']);
  });

  test('a dependency cycle', () => {
    const text = manifest(
      '  - { ref: root, type: log, with: { message: hi } }\n' +
        '  - { ref: a, type: log, dependsOn: [root, b], with: { message: hi } }\n' +
        '  - { ref: b, type: log, dependsOn: [a], with: { message: hi } }\n',
    );
    const p = problems(text);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: steps: dependency cycle among steps: /);
    expect(p[0]).toContain('a');
    expect(p[0]).toContain('b');
    expect(p[0]).not.toContain('root');
  });

  test('unknown step type', () => {
    const p = problems(manifest('  - { ref: a, type: shell, with: { command: ls } }\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: steps\[0\]\.type: /);
  });

  test('unknown and missing with keys', () => {
    const p = problems(
      manifest(
        '  - { ref: a, type: log, with: { msg: hi } }\n' +
          '  - { ref: b, type: http.request, with: { method: GET } }\n' +
          '  - { ref: c, type: flow, with: { payload: {} } }\n' +
          '  - { ref: d, type: wait_for_event, with: { event: go, extra: 1 } }\n' +
          '  - { ref: e, type: notify }\n',
      ),
    );
    expect(p).toEqual([
      'bad.yaml: steps[0].with.msg: unknown key for a log step (allowed: message, level)',
      'bad.yaml: steps[0].with.message: required for a log step',
      'bad.yaml: steps[1].with.url: required for a http.request step',
      'bad.yaml: steps[2].with.type: required for a flow step',
      'bad.yaml: steps[3].with.extra: unknown key for a wait_for_event step (allowed: event, timeoutSeconds)',
      'bad.yaml: steps[4].with.message: required for a notify step',
    ]);
  });

  test('invalid if expression', () => {
    const p = problems(manifest('  - { ref: a, type: log, if: "payload.x ==", with: { message: hi } }\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: steps\[0\]\.if: invalid expression: /);
  });

  test('invalid template expressions in with and outputs', () => {
    const p = problems(
      manifest('  - { ref: a, type: log, with: { message: "x {{ 1 + }}" } }\n') + 'outputs:\n  y: "{{ ) }}"\n  nested: { z: ["{{ ( }}"] }\n',
    );
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^bad\.yaml: steps\[0\]\.with\.message: invalid expression "1 \+": /);
    expect(p[1]).toMatch(/^bad\.yaml: outputs\.y: invalid expression "\)": /);
    expect(p[2]).toMatch(/^bad\.yaml: outputs\.nested\.z\[0\]: invalid expression "\(": /);
  });

  test('an unknown plugin is named with the closest ones; ids and aliases are stored under the engine name', () => {
    expect(problems(manifest('  - { ref: a, type: util.lgo, with: { message: m } }\n'))).toEqual(['bad.yaml: steps[0].type: unknown plugin "util.lgo" (did you mean util.log?)']);
    expect(problems(manifest('  - { ref: a, type: frobnicate }\n'))).toEqual(['bad.yaml: steps[0].type: unknown plugin "frobnicate"']);
    const { definition } = parseManifest('ok.yaml', 'id: ok\nname: Ok\nsteps:\n  - { ref: a, type: util.log, with: { message: m } }\n  - { ref: b, type: flow.gate }\n  - { ref: c, type: transform.hash, with: { value: x } }\n');
    expect(definition!.steps.map((x) => x.type)).toEqual(['log', 'approval', 'transform.hash']);
  });

  test('a flow.switch names only tasks that exist and depend on it', () => {
    expect(problems(manifest(
      '  - { ref: sw, type: flow.switch, with: { value: a, cases: { a: [one], b: [ghost] }, default: [loose] } }\n' +
        '  - { ref: one, type: util.log, dependsOn: [sw], with: { message: m } }\n' +
        '  - { ref: loose, type: util.log, with: { message: m } }\n',
    ))).toEqual([
      'bad.yaml: steps[0].with.cases.b: unknown task "ghost"',
      'bad.yaml: steps[0].with.default: task "loose" must depend on sw (dependsOn: [sw])',
    ]);
  });

  test('credentials outside http.request are rejected', () => {
    const p = problems(
      manifest(
        '  - { ref: a, type: log, with: { message: "{{ credentials.TOKEN }}" } }\n' +
          '  - { ref: b, type: http.request, with: { url: "https://x.test", headers: { a: "{{ credentials.TOKEN }}" } } }\n' +
          '  - { ref: c, type: notify, with: { message: "{{ credentials.TOKEN }}" } }\n' +
          '  - { ref: d, type: flow, with: { type: other, payload: { t: "{{ credentials.T }}" } } }\n',
      ),
    );
    expect(p).toEqual([
      'bad.yaml: steps[0].with: credentials may only be used by plugins that take them (`credentials: true` in GET /api/v1/plugins): a util.log step would store or show them',
      'bad.yaml: steps[2].with: credentials may only be used by plugins that take them (`credentials: true` in GET /api/v1/plugins): a notify.thread step would store or show them',
      'bad.yaml: steps[3].with: credentials may only be used by plugins that take them (`credentials: true` in GET /api/v1/plugins): a flow.subflow step would store or show them',
    ]);
  });

  test('the approval policy may not come from the request: payload (or anything the requester shapes) in approvers, quorum, allowSelfApproval', () => {
    const p = problems(
      manifest(
        '  - { ref: a, type: approval, with: { approvers: "{{ payload.approvers }}" } }\n' +
          '  - { ref: b, type: approval, with: { approvers: ["lead@acme.io", "{{ payload.buddy }}"], quorum: "{{ payload.quorum }}" } }\n' +
          '  - { ref: c, type: approval, with: { allowSelfApproval: "{{ payload.selfApproval }}" } }\n' +
          '  - { ref: d, type: approval, with: { approvers: "{{ steps.a.output.approvedBy }}" } }\n',
      ),
    );
    const rule = 'the approval policy may not come from the request';
    expect(p).toEqual([
      `bad.yaml: steps[0].with.approvers: ${rule} ("{{ payload.approvers }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values`,
      `bad.yaml: steps[1].with.approvers: ${rule} ("{{ payload.buddy }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values`,
      `bad.yaml: steps[1].with.quorum: ${rule} ("{{ payload.quorum }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values`,
      `bad.yaml: steps[2].with.allowSelfApproval: ${rule} ("{{ payload.selfApproval }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values`,
      `bad.yaml: steps[3].with.approvers: ${rule} ("{{ steps.a.output.approvedBy }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values`,
    ]);
  });

  test('approval policies from the flow and the project load; bad literals and an unreachable quorum do not', () => {
    expect(parseManifest('ok.yaml', manifest(
      '  - { ref: a, type: approval, with: { approvers: owners, quorum: 2, allowSelfApproval: false, message: "for {{ payload.who }}" } }\n' +
        '  - { ref: b, type: approval, with: { approvers: group:security } }\n' +
        '  - { ref: c, type: approval, with: { approvers: [owners, group:sre, lead@acme.io], quorum: 3 } }\n' +
        '  - { ref: d, type: approval, with: { approvers: "{{ project.owners }}" } }\n',
    )).problems).toEqual([]);
    expect(problems(manifest(
      '  - { ref: a, type: approval, with: { approvers: [a@acme.io, A@acme.io], quorum: 2 } }\n' +
        '  - { ref: b, type: approval, with: { approvers: "group:", quorum: 0 } }\n',
    ))).toEqual([
      'bad.yaml: steps[0].with.quorum: quorum 2 can never be reached with 1 approver(s)',
      'bad.yaml: steps[1].with.approvers: an email, "owners" or "group:<name>", or a list of them',
      'bad.yaml: steps[1].with.quorum: Too small: expected number to be >=1',
    ]);
  });

  test('credentials in the condition of a non-http step are rejected', () => {
    const p = problems(manifest('  - { ref: a, type: log, if: credentials.X == "y", with: { message: hi } }\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toBe('bad.yaml: steps[0].if: credentials may not be used in conditions');
  });

  test('invalid YAML', () => {
    const p = problems('id: demo\nname: [unclosed\n');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: not valid YAML: /);
    expect(p[0]).not.toContain('\n');
  });

  test('an empty file is reported at the root', () => {
    const p = problems('');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: \(root\): /);
  });

  test('an unknown top-level key is reported at the root', () => {
    const p = problems(manifest('  - { ref: a, type: log, with: { message: hi } }\n', 'color: red\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: \(root\): /);
    expect(p[0]).toContain('color');
  });

  test('an unknown step key is reported on the step', () => {
    const p = problems(manifest('  - { ref: a, type: log, when: x, with: { message: hi } }\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: steps\[0\]: /);
    expect(p[0]).toContain('when');
  });

  test('schema problems are all listed', () => {
    const p = problems(
      'id: Bad_Id\nname: ""\ncategory: weird\nparameters:\n  - { name: a, type: int }\nsteps:\n  - { ref: 1x, type: log, onFailure: explode, retry: 21, with: { message: hi } }\n',
    );
    const fields = p.map((x) => x.split(': ')[1]);
    expect(fields).toEqual(
      expect.arrayContaining(['id', 'name', 'category', 'parameters[0].type', 'steps[0].ref', 'steps[0].onFailure', 'steps[0].retry']),
    );
    expect(p.every((x) => x.startsWith('bad.yaml: '))).toBe(true);
  });

  test('a flow-mode manifest needs steps', () => {
    expect(problems('id: demo\nname: Demo\n')).toEqual(['bad.yaml: steps: a flow-mode manifest needs at least one step']);
  });

  test('a cicd-mode manifest needs a cicd target', () => {
    expect(problems('id: demo\nname: Demo\nexecutionMode: cicd\n')).toEqual(['bad.yaml: cicd: a cicd-mode manifest needs a cicd target']);
  });

  test('duplicate parameters', () => {
    const p = problems(manifest('  - { ref: a, type: log, with: { message: hi } }\n', 'parameters:\n  - { name: p }\n  - { name: q }\n  - { name: p }\n'));
    expect(p).toEqual(['bad.yaml: parameters[2].name: duplicate parameter "p"']);
  });

  test('several problems in one manifest are all reported', () => {
    const p = problems(
      manifest(
        '  - { ref: a, type: log, if: "((", with: { message: hi, extra: 1 } }\n' +
          '  - { ref: b, type: log, with: { message: "{{ credentials.X }}" } }\n',
      ),
    );
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/steps\[0\]\.if: invalid expression/);
    expect(p[1]).toMatch(/steps\[0\]\.with\.extra: unknown key/);
    expect(p[2]).toMatch(/steps\[1\]\.with: credentials/);
  });
});

describe('durations', () => {
  const timeoutOf = (t: string) => {
    const r = parseManifest('d.yaml', manifest(`  - { ref: a, type: log, timeout: ${t}, with: { message: hi } }\n`));
    expect(r.problems).toEqual([]);
    return r.definition!.steps[0].timeout;
  };

  test.each([
    ['"30s"', 30],
    ['"5m"', 300],
    ['"2h"', 7200],
    ['"1.5m"', 90],
    ['45', 45],
    ['0.5', 0.5],
  ])('timeout %s is %d seconds', (input, seconds) => {
    expect(timeoutOf(input)).toBe(seconds);
  });

  test.each(['"30x"', '"5 m"', '"m"', '0', '-3', '"-5s"'])('timeout %s is rejected on the timeout field', (input) => {
    const p = problems(manifest(`  - { ref: a, type: log, timeout: ${input}, with: { message: hi } }\n`));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^bad\.yaml: steps\[0\]\.timeout: /);
  });

  test('durationSeconds directly', () => {
    expect(durationSeconds.parse('30s')).toBe(30);
    expect(durationSeconds.parse('5m')).toBe(300);
    expect(durationSeconds.parse('2h')).toBe(7200);
    expect(durationSeconds.parse(12)).toBe(12);
    expect(durationSeconds.safeParse('2d').success).toBe(false);
    expect(durationSeconds.safeParse('').success).toBe(false);
  });
});

describe('manifestSchema and stepSchema', () => {
  test('retry object keeps given backoff and factor', () => {
    const s = stepSchema.parse({ ref: 'a', type: 'log', retry: { attempts: 5, backoffSeconds: 0.5, factor: 3 } });
    expect(s.retry).toEqual({ attempts: 5, backoffSeconds: 0.5, factor: 3 });
  });

  test('retry bounds', () => {
    expect(stepSchema.safeParse({ ref: 'a', type: 'log', retry: 20 }).success).toBe(true);
    expect(stepSchema.safeParse({ ref: 'a', type: 'log', retry: 21 }).success).toBe(false);
    expect(stepSchema.safeParse({ ref: 'a', type: 'log', retry: -1 }).success).toBe(false);
    expect(stepSchema.safeParse({ ref: 'a', type: 'log', retry: { attempts: 2, factor: 0.5 } }).success).toBe(false);
  });

  test('step refs may use letters, digits, _ and -', () => {
    expect(stepSchema.safeParse({ ref: 'Build_step-2', type: 'log' }).success).toBe(true);
    expect(stepSchema.safeParse({ ref: '_x', type: 'log' }).success).toBe(true);
    expect(stepSchema.safeParse({ ref: '2x', type: 'log' }).success).toBe(false);
    expect(stepSchema.safeParse({ ref: 'a.b', type: 'log' }).success).toBe(false);
  });

  test('ids are lowercase with dashes', () => {
    const base = { name: 'n', steps: [{ ref: 'a', type: 'log', with: { message: 'm' } }] };
    expect(manifestSchema.safeParse({ ...base, id: 'build-on-merge2' }).success).toBe(true);
    expect(manifestSchema.safeParse({ ...base, id: 'Build' }).success).toBe(false);
    expect(manifestSchema.safeParse({ ...base, id: '-x' }).success).toBe(false);
    expect(manifestSchema.safeParse({ ...base, id: 'a_b' }).success).toBe(false);
  });

  test('parameter enum and types', () => {
    const r = manifestSchema.parse({
      id: 'x',
      name: 'X',
      parameters: [{ name: 'env', enum: ['dev', 'prod'], default: 'dev' }, { name: 'n', type: 'number', enum: [1, 2] }],
      steps: [{ ref: 'a', type: 'log', with: { message: 'm' } }],
    });
    expect(r.parameters[0]).toEqual({ name: 'env', type: 'string', required: false, description: '', enum: ['dev', 'prod'], default: 'dev' });
    expect(r.parameters[1].enum).toEqual([1, 2]);
  });
});

describe('graph', () => {
  const step = (ref: string, dependsOn: string[] = []): StepDefinition => stepSchema.parse({ ref, type: 'log', dependsOn, with: { message: ref } });

  test('a valid DAG has no problems', () => {
    expect(graphProblems([step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])])).toEqual([]);
  });

  test('steps can be listed before their dependencies', () => {
    expect(graphProblems([step('d', ['b', 'c']), step('c', ['a']), step('b', ['a']), step('a')])).toEqual([]);
  });

  test('a two-step cycle with no root', () => {
    const p = graphProblems([step('a', ['b']), step('b', ['a'])]);
    expect(p).toEqual([{ path: [], message: 'dependency cycle among steps: a, b' }]);
  });

  test('duplicate ref and unknown dependency are reported before cycle detection', () => {
    const p = graphProblems([step('a'), step('a', ['zzz'])]);
    expect(p).toEqual([
      { path: [1, 'ref'], message: 'duplicate step ref "a"' },
      { path: [1, 'dependsOn', 0], message: 'unknown step "zzz"' },
    ]);
  });

  test('descendants are transitive and exclude unrelated steps', () => {
    const steps = [step('a'), step('b', ['a']), step('c', ['b']), step('d', ['c', 'x']), step('x'), step('y', ['x'])];
    expect([...descendants(steps, 'a')].sort()).toEqual(['b', 'c', 'd']);
    expect([...descendants(steps, 'x')].sort()).toEqual(['d', 'y']);
    expect(descendants(steps, 'd').size).toBe(0);
  });
});

describe('step inputs', () => {
  test('withKeyProblems accepts complete blocks for every kind', () => {
    expect(withKeyProblems('log', stepInputs['log'], { message: 'm', level: 'warn' })).toEqual([]);
    expect(withKeyProblems('http.request', stepInputs['http.request'], { url: 'https://x', method: 'POST', headers: {}, body: {}, timeoutSeconds: 3 })).toEqual([]);
    expect(withKeyProblems('sleep', stepInputs['sleep'], { minutes: 1 })).toEqual([]);
    expect(withKeyProblems('wait_for_event', stepInputs['wait_for_event'], { event: 'e' })).toEqual([]);
    expect(withKeyProblems('flow', stepInputs['flow'], { type: 't', payload: {}, forEach: [] })).toEqual([]);
    expect(withKeyProblems('notify', stepInputs['notify'], { message: 'm' })).toEqual([]);
  });

  test('withKeyProblems on sleep lists its allowed keys', () => {
    expect(withKeyProblems('sleep', stepInputs['sleep'], { hours: 1 })).toEqual([
      { key: 'hours', message: 'unknown key for a sleep step (allowed: seconds, minutes, until)' },
      { key: 'seconds', message: 'give exactly one of seconds, minutes or until' },
    ]);
    expect(withKeyProblems('sleep', stepInputs['sleep'], { seconds: 1, minutes: 2 })).toEqual([{ key: 'seconds', message: 'give exactly one of seconds, minutes or until' }]);
  });

  test('runtime schemas apply defaults and coerce seconds', () => {
    expect(stepInputs.log.parse({ message: 'm' })).toEqual({ message: 'm', level: 'info' });
    expect(stepInputs['http.request'].parse({ url: 'https://example.com' })).toEqual({
      method: 'GET',
      url: 'https://example.com',
      headers: {},
      timeoutSeconds: 30,
    });
    expect(stepInputs.sleep.parse({ seconds: '5' })).toEqual({ seconds: 5 });
    expect(stepInputs.flow.parse({ type: 'x' })).toEqual({ type: 'x', payload: {} });
  });

  test('runtime schemas reject bad values', () => {
    expect(stepInputs['http.request'].safeParse({ url: 'ftp://example.com' }).success).toBe(false);
    expect(stepInputs.sleep.safeParse({}).success).toBe(false);
    expect(stepInputs.sleep.safeParse({ seconds: 1, minutes: 1 }).success).toBe(false);
    expect(stepInputs.sleep.safeParse({ until: '2030-01-01T00:00:00Z' }).success).toBe(true);
    expect(stepInputs.wait_for_event.safeParse({ event: 'has space' }).success).toBe(false);
    expect(stepInputs.flow.safeParse({ type: 'x', forEach: Array.from({ length: 101 }, (_, i) => i) }).success).toBe(false);
  });
});

describe('loadManifests', () => {
  const dirs: string[] = [];
  const folder = (files: Record<string, string>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-manifests-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const problemsOf = (dir: string): string[] => {
    try {
      loadManifests(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      return (err as ManifestError).problems;
    }
    throw new Error('expected a ManifestError');
  };
  const simple = (id: string, steps = '  - { ref: a, type: log, with: { message: hi } }\n') => `id: ${id}\nname: ${id}\nsteps:\n${steps}`;

  test('every built-in manifest loads', () => {
    const defs = loadManifests(path.join(ROOT, 'manifests/flows'));
    const ids = defs.map((d) => d.id);
    expect(ids).toEqual(expect.arrayContaining(['request-elevated-privileges', 'build-on-merge', 'monitor-pool', 'release', 'build-domain']));
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('every test fixture loads', () => {
    const dir = path.join(ROOT, 'test/fixtures/flows');
    const defs = loadManifests(dir);
    const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    expect(defs).toHaveLength(files.length);
    expect(defs.map((d) => d.id)).toEqual(expect.arrayContaining(['parallel', 'child-call', 'orchestrator']));
  });

  test('reads .yaml and .yml, ignores other files, sorted by file name', () => {
    const dir = folder({ 'b.yml': simple('bravo'), 'a.yaml': simple('alpha'), 'notes.txt': 'garbage: [', 'README.md': '# hi' });
    expect(loadManifests(dir).map((d) => d.id)).toEqual(['alpha', 'bravo']);
  });

  test('an empty folder gives no definitions', () => {
    expect(loadManifests(folder({}))).toEqual([]);
  });

  test('a missing folder is a ManifestError naming it', () => {
    const missing = path.join(os.tmpdir(), `flowgate-missing-${process.pid}-${Date.now()}`);
    expect(problemsOf(missing)).toEqual([`${missing}: manifests folder not found`]);
  });

  test('duplicate ids across files', () => {
    const dir = folder({ 'a.yaml': simple('same'), 'b.yaml': simple('same') });
    expect(problemsOf(dir)).toEqual(['b.yaml: id: "same" is already defined in a.yaml']);
  });

  test('a flow step naming an unknown flow type', () => {
    const dir = folder({
      'parent.yaml': simple('parent', '  - { ref: go, type: flow, with: { type: ghost } }\n'),
      'child.yaml': simple('child'),
    });
    expect(problemsOf(dir)).toEqual(['parent.yaml: steps[0].with.type: unknown flow type "ghost"']);
  });

  test('a flow step naming a flow type in another file is fine', () => {
    const dir = folder({
      'a-parent.yaml': simple('parent', '  - { ref: go, type: flow, with: { type: child } }\n'),
      'z-child.yaml': simple('child'),
    });
    expect(loadManifests(dir).map((d) => d.id)).toEqual(['parent', 'child']);
  });

  test('a templated flow type is not checked at load time', () => {
    const dir = folder({ 'p.yaml': simple('parent', '  - { ref: go, type: flow, with: { type: "{{ payload.kind }}" } }\n') });
    expect(loadManifests(dir)).toHaveLength(1);
  });

  test('problems from every file are listed together', () => {
    const dir = folder({
      'bad1.yaml': 'id: x\nname: [oops\n',
      'bad2.yaml': simple('two', '  - { ref: a, type: log, dependsOn: [nope], with: { message: hi } }\n'),
      'good.yaml': simple('good'),
    });
    const p = problemsOf(dir);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^bad1\.yaml: not valid YAML: /);
    expect(p[1]).toBe('bad2.yaml: steps[0].dependsOn[0]: unknown step "nope"');
  });

  test('ManifestError message lists the problems', () => {
    const dir = folder({ 'a.yaml': simple('same'), 'b.yaml': simple('same') });
    try {
      loadManifests(dir);
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as Error).name).toBe('ManifestError');
      expect((err as Error).message).toBe('Invalid flow manifests:\n  - b.yaml: id: "same" is already defined in a.yaml');
    }
  });
});

describe('maxParallelSteps and compensation', () => {
  const log = (ref: string, extra = '') => `  - { ref: ${ref}, type: log, with: { message: hi }${extra} }\n`;

  test('maxParallelSteps is a whole number of at least 0; absent means no cap', () => {
    expect(parseManifest('a.yaml', manifest(log('a'), 'maxParallelSteps: 2\n')).definition!.maxParallelSteps).toBe(2);
    expect(parseManifest('a.yaml', manifest(log('a'), 'maxParallelSteps: 0\n')).definition!.maxParallelSteps).toBe(0);
    expect(parseManifest('a.yaml', manifest(log('a'))).definition!.maxParallelSteps).toBeUndefined();
    for (const bad of ['-1', '1.5', '"two"']) {
      const p = problems(manifest(log('a'), `maxParallelSteps: ${bad}\n`));
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^bad\.yaml: maxParallelSteps: /);
    }
  });

  test('a compensation step and onFailure: compensate load', () => {
    const def = parseManifest('a.yaml', manifest(log('grant', ', onFailure: compensate') + log('work', ', dependsOn: [grant]') + log('revoke', ', compensates: grant'))).definition!;
    expect(def.steps.map((s) => [s.ref, s.onFailure, s.compensates])).toEqual([
      ['grant', 'compensate', undefined], ['work', 'fail_workflow', undefined], ['revoke', 'fail_workflow', 'grant'],
    ]);
  });

  test('the compensated step must exist and not be the step itself', () => {
    expect(problems(manifest(log('a') + log('undo', ', compensates: ghost')))).toEqual(['bad.yaml: steps[1].compensates: unknown step "ghost"']);
    expect(problems(manifest(log('a') + log('undo', ', compensates: undo')))).toEqual(['bad.yaml: steps[1].compensates: a step cannot compensate itself']);
  });

  test('compensations are not compensated, so they cannot form a cycle', () => {
    expect(problems(manifest(log('a') + log('x', ', compensates: y') + log('y', ', compensates: x')))).toEqual([
      'bad.yaml: steps[1].compensates: step "y" is itself a compensation; compensations are not compensated',
      'bad.yaml: steps[2].compensates: step "x" is itself a compensation; compensations are not compensated',
    ]);
  });

  test('a compensation step has no dependsOn and is not a dependency of another step', () => {
    expect(problems(manifest(log('a') + log('undo', ', compensates: a, dependsOn: [a]')))).toEqual([
      'bad.yaml: steps[1].dependsOn: a compensation step runs only when the run fails, after the steps it undoes: it cannot have dependsOn',
    ]);
    expect(problems(manifest(log('a') + log('undo', ', compensates: a') + log('b', ', dependsOn: [a, undo]')))).toEqual([
      'bad.yaml: steps[2].dependsOn[1]: step "undo" is a compensation (of "a") and runs only when the run fails: it cannot be a dependency',
    ]);
  });

  test('onFailure: compensate needs a compensation to run', () => {
    expect(problems(manifest(log('a', ', onFailure: compensate')))).toEqual(['bad.yaml: steps[0].onFailure: compensate needs a step with "compensates: a"']);
  });

  test('the shipped request-elevated-privileges flow revokes a grant when the run fails', () => {
    const def = loadManifests(path.join(ROOT, 'manifests/flows')).find((d) => d.id === 'request-elevated-privileges')!;
    const undo = def.steps.find((s) => s.compensates === 'grant')!;
    expect(undo.with).toMatchObject({ method: 'POST', url: '{{ credentials.ACCESS_API }}/revoke' });
    expect(def.steps.find((s) => s.ref === 'grant')!.onFailure).toBe('compensate');
  });
});
