import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { graphProblems } from '../../src/core/registry/graph.js';
import { loadManifests, ManifestError } from '../../src/core/registry/load-manifests.js';
import { stepSchema } from '../../src/core/registry/manifest-schema.js';
import { parseSince } from '../../src/core/runs/run-query.js';
import { mentionsCredentials } from '../../src/core/expressions/templates.js';

const steps = (spec: [string, string[]][]) => spec.map(([ref, dependsOn]) => stepSchema.parse({ ref, type: 'log', dependsOn, with: { message: ref } }));

test('a cycle is reported with only the steps on it, not those downstream of it', () => {
  const problems = graphProblems(steps([['r', []], ['a', ['r', 'b']], ['b', ['a']], ['c', ['b']]]));
  expect(problems).toEqual([{ path: [], message: 'dependency cycle among steps: a, b' }]);
});

test('an unknown child flow type is blamed on the file that has the step, even with a duplicate id', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-manifests-'));
  const head = 'id: same\nname: Same\nsteps:\n';
  fs.writeFileSync(path.join(dir, 'a.yaml'), `${head}  - { ref: go, type: flow, with: { type: ghost } }\n`);
  fs.writeFileSync(path.join(dir, 'b.yml'), `${head}  - { ref: say, type: log, with: { message: hi } }\n`);
  try {
    loadManifests(dir);
    throw new Error('expected a ManifestError');
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).problems).toEqual([
      'b.yml: id: "same" is already defined in a.yaml',
      'a.yaml: steps[0].with.type: unknown flow type "ghost"',
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('credentials are detected inside template expressions only', () => {
  expect(mentionsCredentials({ message: 'see credentials.yaml in the repo' })).toBe(false);
  expect(mentionsCredentials({ message: 'token {{ credentials["API"] }}' })).toBe(true);
  expect(mentionsCredentials(['{{ credentials.X }}'])).toBe(true);
});

test('parseSince rejects impossible days and reads a time without offset as UTC', () => {
  expect(parseSince('2026-02-30')).toBeUndefined();
  expect(parseSince('2026-01-02 10:00')!.toISOString()).toBe('2026-01-02T10:00:00.000Z');
  expect(parseSince('2026-01-02T10:00:00+02:00')!.toISOString()).toBe('2026-01-02T08:00:00.000Z');
});

test('a failed fetch to another service is not a database outage; driver errors are', async () => {
  const { isDatabaseUnavailable } = await import('../../src/errors.js');
  const fetchFailure = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
  expect(isDatabaseUnavailable(fetchFailure)).toBe(false);
  expect(isDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(true);
  expect(isDatabaseUnavailable(Object.assign(new Error('x'), { cause: { code: '57P01' } }))).toBe(true);
  expect(isDatabaseUnavailable(new Error('insert into runs … - terminating connection due to administrator command'))).toBe(true);
});
