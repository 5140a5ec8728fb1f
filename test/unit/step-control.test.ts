import { stepSchema } from '../../src/core/registry/manifest-schema.js';
import { isOutcome, overridable, rowsToReset, statusOf, type ControlStep } from '../../src/core/runs/step-control.js';

const step = (ref: string, dependsOn: string[] = []) => stepSchema.parse({ ref, type: 'log', dependsOn, with: { message: ref } });
const row = (ref: string, status: ControlStep['status'], error: string | null = null, overriddenBy: string | null = null): ControlStep =>
  ({ ref, status, error, overriddenBy, waitingFor: null });

// a → b → c, a → d; e alone
const STEPS = [step('a'), step('b', ['a']), step('c', ['b']), step('d', ['a']), step('e')];

test('outcomes the engine keeps: completed, failed, skipped by a condition or by a person; not derived skips and cancels', () => {
  expect(isOutcome(row('a', 'completed'))).toBe(true);
  expect(isOutcome(row('a', 'failed', 'boom'))).toBe(true);
  expect(isOutcome(row('a', 'skipped'))).toBe(true);
  expect(isOutcome(row('a', 'skipped', 'change freeze', 'dev@acme.io'))).toBe(true);
  expect(isOutcome(row('a', 'skipped', 'skipped: dependency x did not complete'))).toBe(false);
  expect(isOutcome(row('a', 'cancelled', 'cancelled: step x failed'))).toBe(false);
  expect(isOutcome(row('a', 'waiting'))).toBe(false);
});

test('a step without a row is pending; only pending and waiting steps can be skipped or force-completed', () => {
  expect(statusOf([row('a', 'completed')], 'b')).toBe('pending');
  expect(statusOf([row('a', 'completed')], 'a')).toBe('completed');
  expect(['pending', 'waiting', 'running', 'completed', 'failed', 'skipped', 'cancelled'].filter((s) => overridable(s as ControlStep['status']))).toEqual(['pending', 'waiting']);
});

test('a step retry resets the step and every derived row, keeping other outcomes', () => {
  const rows = [row('a', 'completed'), row('b', 'failed', 'boom'), row('c', 'cancelled', 'cancelled: step b failed'), row('d', 'completed'), row('e', 'skipped')];
  expect(rowsToReset(STEPS, rows, ['b'], false).sort()).toEqual(['b', 'c']);
});

test('a subtree replay resets the step, its descendants with rows, and derived rows elsewhere; never steps upstream or beside it', () => {
  const rows = [row('a', 'completed'), row('b', 'completed'), row('c', 'completed'), row('d', 'completed'), row('e', 'completed')];
  expect(rowsToReset(STEPS, rows, ['a'], true).sort()).toEqual(['a', 'b', 'c', 'd']);
  expect(rowsToReset(STEPS, rows, ['b'], true).sort()).toEqual(['b', 'c']);
  // A waiting step in the subtree is reset too (its wait is closed by the caller); one outside is left alone.
  expect(rowsToReset(STEPS, [row('b', 'completed'), row('c', 'waiting'), row('e', 'waiting')], ['b'], true).sort()).toEqual(['b', 'c']);
});
