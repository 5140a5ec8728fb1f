import { compileDocument } from '../../src/core/flows/flow-document.js';

const doc = (body: string) => compileDocument(body);

describe('compileDocument', () => {
  test('the document grammar compiles to the manifest definition: inputs, tasks, implicit dependencies, credentials, conditions', () => {
    const c = doc(`
name: deploy-service
namespace: production
description: Deploys a service
inputs:
  env: staging
  version: { type: string, required: true, enum: ["1.4", "1.5"] }
tasks:
  - { name: approve, type: flow.approval, properties: { quorum: 1 } }
  - name: fetch
    type: http.request
    dependsOn: [approve]
    if: "{{ inputs.env == 'production' }}"
    retry: { attempts: 3, backoffSeconds: 5, factor: 2 }
    timeout: 30s
    properties: { url: "https://api.acme.io/c/{{ inputs.version }}", headers: { Authorization: "Bearer \${ACME_TOKEN}", Literal: "$\${KEEP}" } }
  - { name: report, type: util.log, properties: { message: "got {{ outputs['fetch']['status'] }}" } }
outputs: { code: "{{ outputs.fetch.status }}" }
`);
    expect(c.errors).toEqual([]);
    expect(c).toMatchObject({ name: 'deploy-service', namespace: 'production', description: 'Deploys a service' });
    const d = c.definition!;
    expect(d.parameters).toEqual([
      expect.objectContaining({ name: 'env', type: 'string', default: 'staging', required: false }),
      expect.objectContaining({ name: 'version', type: 'string', required: true, enum: ['1.4', '1.5'] }),
    ]);
    expect(d.steps.map((s) => [s.ref, s.type, s.dependsOn])).toEqual([['approve', 'approval', []], ['fetch', 'http.request', ['approve']], ['report', 'log', ['fetch']]]);
    const fetch = d.steps[1];
    expect(fetch.if).toBe("inputs.env == 'production'");
    expect(fetch.retry).toEqual({ attempts: 3, backoffSeconds: 5, factor: 2 });
    expect(fetch.timeout).toBe(30);
    expect(fetch.with.headers).toEqual({ Authorization: 'Bearer {{ credentials.ACME_TOKEN }}', Literal: '${KEEP}' });
    expect(d.outputs).toEqual({ code: '{{ outputs.fetch.status }}' });
  });

  test('flow.subflow in the platform spelling ({flow, inputs}) is the manifest\'s {type, payload}', () => {
    const c = doc('name: parent\ntasks:\n  - { name: child, type: flow.subflow, properties: { flow: notifier, inputs: { text: hi } } }\n');
    expect(c.errors).toEqual([]);
    expect(c.definition!.steps[0]).toMatchObject({ type: 'flow', with: { type: 'notifier', payload: { text: 'hi' } } });
  });

  test('the manifest form is a document too', () => {
    const c = doc('id: hello\nname: Hello\nsteps:\n  - { ref: a, type: log, with: { message: hi } }\n');
    expect(c.errors).toEqual([]);
    expect(c.name).toBe('hello');
    expect(c.definition!.steps[0]).toMatchObject({ ref: 'a', type: 'log' });
  });

  test('every mistake is named by its path in the document', () => {
    const c = doc(`
name: Bad Name
colour: blue
inputs:
  env: { type: string, requird: true }
tasks:
  - { name: one, type: util.lgo, properties: { message: x } }
  - { name: two, type: util.log, dependsOn: [nope], properties: { message: x, extra: 1 } }
  - { name: three, type: util.log, if: "((", properties: { message: "{{ inputs. }}" } }
  - { name: four, type: util.log, properties: { message: "\${SECRET}" } }
  - { name: loop1, type: util.log, dependsOn: [loop2], properties: { message: a } }
  - { name: loop2, type: util.log, dependsOn: [loop1], properties: { message: b } }
`);
    const paths = c.errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['colour', 'name', 'inputs.env.requird']));
    expect(c.definition).toBeUndefined();
    // Structural mistakes stop before the definition checks; fix them and the next layer shows.
    const next = doc(`
name: bad
tasks:
  - { name: one, type: util.lgo, properties: { message: x } }
`);
    expect(next.errors).toEqual([{ path: 'tasks[0].type', message: 'unknown plugin "util.lgo" (did you mean util.log?)' }]);
    const deeper = doc(`
name: bad
tasks:
  - { name: two, type: util.log, dependsOn: [nope], properties: { message: x, extra: 1 } }
  - { name: three, type: util.log, if: "((", properties: { message: "{{ inputs. }}" } }
  - { name: four, type: util.log, properties: { message: "\${SECRET}" } }
`);
    const byPath = Object.fromEntries(deeper.errors.map((e) => [e.path, e.message]));
    expect(byPath['tasks[0].dependsOn[0]']).toMatch(/unknown step "nope"/);
    expect(byPath['tasks[0].properties.extra']).toMatch(/unknown key/);
    expect(byPath['tasks[1].if']).toMatch(/invalid expression/);
    expect(byPath['tasks[1].properties.message']).toMatch(/invalid expression/);
    expect(byPath['tasks[2].properties']).toMatch(/credentials may only be used by plugins that take them/);
    const cycle = doc('name: c\ntasks:\n  - { name: a, type: util.log, dependsOn: [b], properties: { message: a } }\n  - { name: b, type: util.log, dependsOn: [a], properties: { message: b } }\n');
    expect(cycle.errors).toEqual([{ path: 'tasks', message: 'dependency cycle among steps: a, b' }]);
  });

  test('warnings: depends_on, an unused input; YAML syntax errors name the line', () => {
    const c = doc('name: w\ninputs:\n  unused: 1\ntasks:\n  - { name: a, type: util.log, properties: { message: x } }\n  - { name: b, type: util.log, depends_on: [a], properties: { message: y } }\n');
    expect(c.errors).toEqual([]);
    expect(c.warnings).toEqual([{ path: 'tasks[1].depends_on', message: 'read as dependsOn' }, { path: 'inputs.unused', message: 'declared but no task uses it' }]);
    expect(c.definition!.steps[1].dependsOn).toEqual(['a']);
    const bad = doc('name: x\ntasks: [\n');
    expect(bad.errors[0]).toMatchObject({ path: '(yaml)', message: expect.stringMatching(/^not valid YAML \(line \d+, column \d+\)/) });
    expect(doc('- a\n- b\n').errors).toEqual([{ path: '(root)', message: 'a flow document is a mapping (name, inputs, tasks…)' }]);
    expect(doc('name: x\nname: y\ntasks: []\n').errors[0].path).toBe('(yaml)');
  });
});
