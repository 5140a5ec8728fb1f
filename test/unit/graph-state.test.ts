import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../src/core/registry/load-manifests.js';
import { stepSchema, type StepDefinition } from '../../src/core/registry/manifest-schema.js';
import { cancel, planNext, runsAlone, settle, summarize, type GraphState } from '../../src/engine/graph-state.js';
import type { StepOutcome } from '../../src/engine/run-outcome.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

type OnFailure = StepDefinition['onFailure'];
const step = (ref: string, dependsOn: string[] = [], onFailure: OnFailure = 'fail_workflow'): StepDefinition =>
  stepSchema.parse({ ref, type: 'log', dependsOn, onFailure, with: { message: ref } });

const state = (...steps: StepDefinition[]): GraphState => ({ steps, status: {}, failures: [] });
const refs = (s: StepDefinition[]) => s.map((x) => x.ref);

const done = (ref: string, output: unknown = null): StepOutcome => ({ ref, status: 'completed', output, error: null });
const failed = (ref: string, error = 'boom'): StepOutcome => ({ ref, status: 'failed', output: null, error });
const skipped = (ref: string): StepOutcome => ({ ref, status: 'skipped', output: null, error: null });

describe('planNext', () => {
  test('roots start first, all together', () => {
    const s = state(step('a'), step('b'), step('c', ['a', 'b']));
    const plan = planNext(s);
    expect(refs(plan.start)).toEqual(['a', 'b']);
    expect(plan.block).toEqual([]);
    expect(plan.finished).toBe(false);
    expect(s.status).toEqual({ a: 'running', b: 'running' });
  });

  test('a running step is not started twice', () => {
    const s = state(step('a'), step('b', ['a']));
    planNext(s);
    const again = planNext(s);
    expect(again.start).toEqual([]);
    expect(again.finished).toBe(false);
  });

  test('a join starts only after all its dependencies', () => {
    const s = state(step('a'), step('b'), step('join', ['a', 'b']));
    planNext(s);
    settle(s, done('a'));
    const p1 = planNext(s);
    expect(p1.start).toEqual([]);
    expect(p1.finished).toBe(false);
    settle(s, done('b'));
    const p2 = planNext(s);
    expect(refs(p2.start)).toEqual(['join']);
    settle(s, done('join'));
    const p3 = planNext(s);
    expect(p3.start).toEqual([]);
    expect(p3.finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'completed', error: null });
  });

  test('a chain starts one step at a time', () => {
    const s = state(step('c', ['b']), step('b', ['a']), step('a'));
    expect(refs(planNext(s).start)).toEqual(['a']);
    settle(s, done('a'));
    expect(refs(planNext(s).start)).toEqual(['b']);
    settle(s, done('b'));
    expect(refs(planNext(s).start)).toEqual(['c']);
  });

  test('a skipped step releases its dependents', () => {
    const s = state(step('maybe'), step('after', ['maybe']));
    planNext(s);
    settle(s, skipped('maybe'));
    expect(s.status.maybe).toBe('skipped');
    expect(refs(planNext(s).start)).toEqual(['after']);
    settle(s, done('after'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'completed', error: null });
  });

  test('an empty graph is finished at once', () => {
    const plan = planNext(state());
    expect(plan).toEqual({ start: [], block: [], finished: true });
  });
});

describe('onFailure: continue', () => {
  test('releases dependents and the run ends partial', () => {
    const s = state(step('a', [], 'continue'), step('b', ['a']));
    planNext(s);
    expect(settle(s, failed('a', 'HTTP 500'))).toEqual([]);
    expect(refs(planNext(s).start)).toEqual(['b']);
    settle(s, done('b'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'partial', error: 'step a failed: HTTP 500' });
  });

  test('several tolerated failures are joined in the error', () => {
    const s = state(step('a', [], 'continue'), step('b', [], 'continue'));
    planNext(s);
    settle(s, failed('a', 'one'));
    settle(s, failed('b', 'two'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'partial', error: 'step a failed: one; step b failed: two' });
  });

  test('a failure without an error message says failed', () => {
    const s = state(step('a', [], 'continue'));
    planNext(s);
    settle(s, { ref: 'a', status: 'failed', output: null, error: null });
    expect(summarize(s).error).toBe('step a failed: failed');
  });
});

describe('onFailure: skip_dependents', () => {
  test('blocks all descendants transitively as skipped; others still run; run ends partial', () => {
    const s = state(
      step('a', [], 'skip_dependents'),
      step('b', ['a']),
      step('c', ['b']),
      step('d', ['c', 'x']),
      step('x'),
      step('y', ['x']),
    );
    expect(refs(planNext(s).start)).toEqual(['a', 'x']);
    expect(settle(s, failed('a', 'nope'))).toEqual([]);
    const plan = planNext(s);
    expect(plan.block.map((b) => b.ref).sort()).toEqual(['b', 'c', 'd']);
    expect(plan.block.every((b) => b.status === 'skipped')).toBe(true);
    expect(plan.block.find((b) => b.ref === 'b')).toEqual({
      ref: 'b',
      kind: 'log',
      reason: 'skipped: dependency a did not complete',
      depsRequired: 1,
      status: 'skipped',
    });
    expect(plan.block.find((b) => b.ref === 'c')!.reason).toBe('skipped: dependency b did not complete');
    expect(plan.block.find((b) => b.ref === 'd')!.depsRequired).toBe(2);
    expect(plan.start).toEqual([]);
    expect(plan.finished).toBe(false); // x still running
    settle(s, done('x'));
    const next = planNext(s);
    expect(refs(next.start)).toEqual(['y']);
    expect(next.block).toEqual([]);
    settle(s, done('y'));
    expect(planNext(s).finished).toBe(true);
    expect(s.status).toMatchObject({ a: 'failed_blocking', b: 'blocked', c: 'blocked', d: 'blocked', x: 'completed', y: 'completed' });
    expect(summarize(s)).toEqual({ status: 'partial', error: 'step a failed: nope' });
  });

  test('a blocked step is reported only once', () => {
    const s = state(step('a', [], 'skip_dependents'), step('b', ['a']));
    planNext(s);
    settle(s, failed('a'));
    expect(planNext(s).block).toHaveLength(1);
    const again = planNext(s);
    expect(again.block).toEqual([]);
    expect(again.finished).toBe(true);
  });
});

describe('onFailure: fail_workflow', () => {
  test('returns the running refs to cancel, cancels the rest, run ends failed', () => {
    const s = state(step('a'), step('b'), step('c'), step('after-a', ['a']), step('after-b', ['b']));
    expect(refs(planNext(s).start)).toEqual(['a', 'b', 'c']);
    settle(s, done('c'));
    const cancel = settle(s, failed('a', 'HTTP 503'));
    expect(cancel).toEqual(['b']);
    expect(s.aborted).toBe(true);
    expect(s.status.a).toBe('failed');
    expect(s.status.b).toBe('cancelled');
    expect(s.status.c).toBe('completed');

    const plan = planNext(s);
    expect(plan.start).toEqual([]);
    expect(plan.block.map((b) => b.ref).sort()).toEqual(['after-a', 'after-b']);
    expect(plan.block.every((b) => b.status === 'cancelled' && b.reason === 'not run: the run failed')).toBe(true);
    expect(plan.finished).toBe(true);
    expect(s.status['after-a']).toBe('cancelled');
    expect(summarize(s)).toEqual({ status: 'failed', error: 'step a failed: HTTP 503' });
  });

  test('nothing new starts after an abort, even if a dependency had completed', () => {
    const s = state(step('a'), step('b'), step('c', ['b']));
    planNext(s);
    settle(s, done('b'));
    settle(s, failed('a'));
    const plan = planNext(s);
    expect(plan.start).toEqual([]);
    expect(plan.block.map((b) => b.ref)).toEqual(['c']);
  });

  test('an outcome for a cancelled step is ignored', () => {
    const s = state(step('a'), step('b'));
    planNext(s);
    settle(s, failed('a'));
    expect(settle(s, done('b'))).toEqual([]);
    expect(s.status.b).toBe('cancelled');
    expect(summarize(s).status).toBe('failed');
  });

  test('the fatal failure wins over tolerated ones in the summary', () => {
    const s = state(step('t', [], 'continue'), step('f'));
    planNext(s);
    settle(s, failed('t', 'minor'));
    settle(s, failed('f', 'major'));
    expect(summarize(s)).toEqual({ status: 'failed', error: 'step f failed: major' });
  });
});

describe('settle', () => {
  test('a duplicate outcome is ignored', () => {
    const s = state(step('a', [], 'continue'), step('b'));
    planNext(s);
    settle(s, failed('a'));
    expect(settle(s, failed('a'))).toEqual([]);
    expect(s.failures).toHaveLength(1);
    settle(s, done('b'));
    expect(settle(s, failed('b'))).toEqual([]);
    expect(s.status.b).toBe('completed');
    expect(s.failures).toHaveLength(1);
  });

  test('an outcome for a step that never started is ignored', () => {
    const s = state(step('a'), step('b', ['a']));
    planNext(s);
    expect(settle(s, done('b'))).toEqual([]);
    expect(s.status.b).toBeUndefined();
    expect(refs(planNext(s).start)).toEqual([]);
  });

  test('records the failure with its onFailure policy', () => {
    const s = state(step('a', [], 'skip_dependents'));
    planNext(s);
    settle(s, failed('a', 'why'));
    expect(s.failures).toEqual([{ ref: 'a', error: 'why', onFailure: 'skip_dependents' }]);
  });

  test('the same outcomes in the same order give the same decisions', () => {
    const build = () => state(step('a'), step('b', [], 'skip_dependents'), step('c', ['a', 'b']), step('d', ['a']));
    const runOnce = () => {
      const s = build();
      const log: unknown[] = [refs(planNext(s).start)];
      settle(s, done('a'));
      log.push(planNext(s));
      settle(s, failed('b'));
      log.push(planNext(s));
      settle(s, done('d'));
      log.push(planNext(s), summarize(s), s.status);
      return JSON.stringify(log);
    };
    expect(runOnce()).toBe(runOnce());
  });
});

describe('runsAlone', () => {
  test('a chain runs each step alone; parallel branches do not, nor a step starting while another runs', () => {
    const chain = state(step('a'), step('b', ['a']));
    expect(runsAlone(chain, planNext(chain))).toBe(true);
    settle(chain, done('a'));
    expect(runsAlone(chain, planNext(chain))).toBe(true);

    const fan = state(step('a'), step('b'), step('c', ['a']));
    expect(runsAlone(fan, planNext(fan))).toBe(false);
    settle(fan, done('a'));
    // c may start, but b still runs beside it.
    const plan = planNext(fan);
    expect(refs(plan.start)).toEqual(['c']);
    expect(runsAlone(fan, plan)).toBe(false);
  });

  test('a finished plan has nothing to run alone', () => {
    const s = state(step('a'));
    planNext(s);
    settle(s, done('a'));
    expect(runsAlone(s, planNext(s))).toBe(false);
  });
});

describe('maxParallelSteps', () => {
  const capped = (cap: number, ...steps: StepDefinition[]): GraphState => ({ ...state(...steps), maxParallel: cap });

  test('planNext never starts more steps than the free slots; a waiting step starts when one frees', () => {
    const s = capped(2, step('a'), step('b'), step('c'), step('d'), step('join', ['a', 'b', 'c', 'd']));
    expect(refs(planNext(s).start)).toEqual(['a', 'b']);
    expect(s.status.c).toBeUndefined();
    const waiting = planNext(s);
    expect(waiting.start).toEqual([]);
    expect(waiting.finished).toBe(false);
    settle(s, done('b'));
    expect(refs(planNext(s).start)).toEqual(['c']);
    settle(s, done('a'));
    settle(s, done('c'));
    expect(refs(planNext(s).start)).toEqual(['d']);
    settle(s, done('d'));
    expect(refs(planNext(s).start)).toEqual(['join']);
    settle(s, done('join'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'completed', error: null });
  });

  test('0 means no cap', () => {
    const s = capped(0, step('a'), step('b'), step('c'));
    expect(refs(planNext(s).start)).toEqual(['a', 'b', 'c']);
  });

  test('a cap of 1 runs every step alone', () => {
    const s = capped(1, step('a'), step('b'));
    const p = planNext(s);
    expect(refs(p.start)).toEqual(['a']);
    expect(runsAlone(s, p)).toBe(true);
    settle(s, done('a'));
    const next = planNext(s);
    expect(refs(next.start)).toEqual(['b']);
    expect(runsAlone(s, next)).toBe(true);
  });

  test('blocking still cascades while the slots are full', () => {
    const s = capped(1, step('a', [], 'skip_dependents'), step('x'), step('b', ['a']));
    expect(refs(planNext(s).start)).toEqual(['a']);
    settle(s, failed('a'));
    const p = planNext(s);
    expect(p.block.map((b) => b.ref)).toEqual(['b']);
    expect(refs(p.start)).toEqual(['x']);
  });
});

const undo = (ref: string, compensates: string): StepDefinition =>
  stepSchema.parse({ ref, type: 'log', compensates, with: { message: `undo ${compensates}` } });

describe('compensation', () => {
  test('a compensation never starts while the run goes well, and is skipped when it ends', () => {
    const s = state(step('grant'), step('work', ['grant']), undo('revoke', 'grant'));
    expect(refs(planNext(s).start)).toEqual(['grant']);
    settle(s, done('grant'));
    expect(refs(planNext(s).start)).toEqual(['work']);
    settle(s, done('work'));
    const last = planNext(s);
    expect(last.start).toEqual([]);
    expect(last.block).toEqual([{ ref: 'revoke', kind: 'log', reason: 'skipped: the run did not fail', depsRequired: 0, status: 'skipped' }]);
    expect(last.finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'completed', error: null });
  });

  test('when the run fails, the compensation of a completed step runs, the rest is cancelled, the run ends failed', () => {
    const s = state(step('grant'), step('work', ['grant']), step('after', ['work']), undo('revoke', 'grant'));
    planNext(s);
    settle(s, done('grant'));
    planNext(s);
    expect(settle(s, failed('work', 'HTTP 500'))).toEqual([]);
    const p = planNext(s);
    expect(refs(p.start)).toEqual(['revoke']);
    expect(p.block).toEqual([{ ref: 'after', kind: 'log', reason: 'not run: the run failed', depsRequired: 1, status: 'cancelled' }]);
    expect(p.finished).toBe(false);
    settle(s, done('revoke'));
    const end = planNext(s);
    expect(end.start).toEqual([]);
    expect(end.finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'failed', error: 'step work failed: HTTP 500' });
  });

  test('a step that did not complete is not compensated', () => {
    const s = state(step('grant'), undo('revoke', 'grant'));
    planNext(s);
    settle(s, failed('grant'));
    const p = planNext(s);
    expect(p.start).toEqual([]);
    expect(p.block).toEqual([{ ref: 'revoke', kind: 'log', reason: 'skipped: step grant did not complete', depsRequired: 0, status: 'skipped' }]);
    expect(p.finished).toBe(true);
  });

  test('onFailure: compensate undoes the failing step itself, and a step cancelled while running', () => {
    const s = state(step('grant', [], 'compensate'), step('other', [], 'compensate'), undo('revoke', 'grant'), undo('undo-other', 'other'));
    expect(refs(planNext(s).start)).toEqual(['grant', 'other']);
    expect(settle(s, failed('grant', 'timeout'))).toEqual(['other']);
    expect(refs(planNext(s).start)).toEqual(['revoke', 'undo-other']);
    settle(s, done('revoke'));
    settle(s, done('undo-other'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'failed', error: 'step grant failed: timeout' });
  });

  test('a step cancelled while running without onFailure: compensate is not compensated', () => {
    const s = state(step('a'), step('b'), undo('undo-b', 'b'));
    planNext(s);
    settle(s, failed('a'));
    expect(planNext(s).block.map((b) => b.ref)).toEqual(['undo-b']);
  });

  test('compensations run in reverse dependency order: the later step is undone first', () => {
    const s = state(
      step('reserve'), step('grant', ['reserve']), step('side', ['reserve']), step('work', ['grant']),
      undo('release', 'reserve'), undo('revoke', 'grant'), undo('unside', 'side'),
    );
    planNext(s);
    settle(s, done('reserve'));
    planNext(s);
    settle(s, done('grant'));
    settle(s, done('side'));
    planNext(s);
    settle(s, failed('work'));
    // revoke and unside undo steps that came after reserve; release waits for both.
    expect(refs(planNext(s).start)).toEqual(['revoke', 'unside']);
    settle(s, done('revoke'));
    expect(planNext(s).start).toEqual([]);
    settle(s, failed('unside', 'gone'));
    expect(refs(planNext(s).start)).toEqual(['release']);
    settle(s, done('release'));
    expect(planNext(s).finished).toBe(true);
    // A failed compensation does not stop the others, and is reported.
    expect(summarize(s)).toEqual({ status: 'failed', error: 'step work failed: boom; compensation unside failed: gone' });
  });

  test('a skipped compensation of a later step does not hold back an earlier one', () => {
    const s = state(step('reserve'), step('grant', ['reserve']), undo('release', 'reserve'), undo('revoke', 'grant'));
    planNext(s);
    settle(s, done('reserve'));
    planNext(s);
    settle(s, failed('grant'));
    const p = planNext(s);
    expect(refs(p.start)).toEqual(['release']);
    expect(p.block.map((b) => b.ref)).toEqual(['revoke']);
  });

  test('compensations respect maxParallelSteps', () => {
    const s: GraphState = { ...state(step('a'), step('b'), step('c', ['a', 'b']), undo('ua', 'a'), undo('ub', 'b')), maxParallel: 1 };
    planNext(s);
    settle(s, done('a'));
    planNext(s);
    settle(s, done('b'));
    planNext(s);
    settle(s, failed('c'));
    expect(refs(planNext(s).start)).toEqual(['ua']);
    settle(s, done('ua'));
    expect(refs(planNext(s).start)).toEqual(['ub']);
  });

  test('cancel: running steps are returned, compensations of completed steps run, the run ends cancelled', () => {
    const s = state(step('grant'), step('hold', ['grant']), step('revoke', ['hold']), undo('undo-grant', 'grant'));
    planNext(s);
    settle(s, done('grant'));
    planNext(s);
    expect(cancel(s, 'cancelled by dev@acme.io')).toEqual(['hold']);
    expect(cancel(s)).toEqual([]);
    const p = planNext(s);
    expect(refs(p.start)).toEqual(['undo-grant']);
    expect(p.block).toEqual([{ ref: 'revoke', kind: 'log', reason: 'not run: the run was cancelled', depsRequired: 1, status: 'cancelled' }]);
    settle(s, done('undo-grant'));
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'cancelled', error: 'cancelled by dev@acme.io' });
  });

  test('the shipped request-elevated-privileges flow: once grant completed, a failure of hold revokes exactly once', () => {
    const text = fs.readFileSync(path.join(ROOT, 'manifests/flows/request-elevated-privileges.yaml'), 'utf8');
    const def = parseManifest('request-elevated-privileges.yaml', text).definition!;
    const s: GraphState = { steps: def.steps, status: {}, failures: [], maxParallel: def.maxParallelSteps ?? 0 };
    expect(refs(planNext(s).start)).toEqual(['approve']);
    settle(s, done('approve'));
    expect(refs(planNext(s).start)).toEqual(['grant']);
    settle(s, done('grant'));
    expect(refs(planNext(s).start)).toEqual(['announce', 'hold']);
    settle(s, done('announce'));
    settle(s, failed('hold', 'interrupted'));
    const p = planNext(s);
    const revokes = p.start.filter((x) => String(x.with.url).endsWith('/revoke'));
    expect(refs(revokes)).toEqual(['revoke-on-failure']);
    expect(p.block.map((b) => [b.ref, b.status])).toEqual([['revoke', 'cancelled']]);
    settle(s, done('revoke-on-failure'));
    expect(planNext(s)).toEqual({ start: [], block: [], finished: true });
    expect(summarize(s).status).toBe('failed');
  });

  test('the shipped flow: a rejected approval revokes nothing', () => {
    const text = fs.readFileSync(path.join(ROOT, 'manifests/flows/request-elevated-privileges.yaml'), 'utf8');
    const s: GraphState = { steps: parseManifest('r.yaml', text).definition!.steps, status: {}, failures: [] };
    planNext(s);
    settle(s, failed('approve', 'rejected'));
    const p = planNext(s);
    expect(p.start).toEqual([]);
    expect(p.block.find((b) => b.ref === 'revoke-on-failure')).toMatchObject({ status: 'skipped', reason: 'skipped: step grant did not complete' });
    expect(p.finished).toBe(true);
  });
});

describe('hold (paused, or yielding to a control action) and run timeout', () => {
  test('a held run starts nothing and is not finished while steps wait to start; released, it goes on', () => {
    const s = state(step('a'), step('b', ['a']));
    s.hold = true;
    const held = planNext(s);
    expect(held.start).toEqual([]);
    expect(held.finished).toBe(false);
    expect(s.status).toEqual({});
    s.hold = false;
    expect(refs(planNext(s).start)).toEqual(['a']);
    settle(s, done('a'));
    s.hold = true;
    expect(planNext(s)).toMatchObject({ start: [], finished: false });
  });

  test('a hold still records what can never run (a failed dependency blocks its dependents)', () => {
    const s = state(step('a', [], 'skip_dependents'), step('b', ['a']));
    planNext(s);
    settle(s, failed('a'));
    s.hold = true;
    const plan = planNext(s);
    expect(plan.block.map((b) => b.ref)).toEqual(['b']);
    expect(plan.finished).toBe(true);
  });

  test('a timed-out run ends timed_out with the reason', () => {
    const s = state(step('a'), step('b', ['a']));
    planNext(s);
    s.timedOut = true;
    expect(cancel(s, 'timed out: the run passed its expiry')).toEqual(['a']);
    expect(planNext(s).finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'timed_out', error: 'timed out: the run passed its expiry' });
  });
});

describe('branches', () => {
  // A branching step rules out the steps its output names; here: its dependents when `result` is false.
  const branching = (s: GraphState): GraphState => ({
    ...s, branches: (st, output, steps) => (st.ref === 'gate' && (output as { result?: boolean })?.result === false ? steps.filter((x) => x.dependsOn.includes('gate')).map((x) => x.ref) : []),
  });

  test('the steps a completed step rules out are skipped with their descendants; the others run and the run completes', () => {
    const s = branching(state(step('gate'), step('yes', ['gate']), step('after', ['yes']), step('other')));
    expect(refs(planNext(s).start)).toEqual(['gate', 'other']);
    settle(s, done('gate', { result: false }));
    settle(s, done('other'));
    const plan = planNext(s);
    expect(plan.block.map((b) => [b.ref, b.reason])).toEqual([['yes', 'skipped: not the branch gate took'], ['after', 'skipped: dependency yes did not complete']]);
    expect(plan.finished).toBe(true);
    expect(summarize(s)).toEqual({ status: 'completed', error: null });
  });

  test('replaying the same outcomes decides the same (a re-claimed run rebuilds its branches from the step rows)', () => {
    const live = branching(state(step('gate'), step('yes', ['gate'])));
    planNext(live);
    settle(live, done('gate', { result: true }));
    expect(refs(planNext(live).start)).toEqual(['yes']);
    const replayed = branching(state(step('gate'), step('yes', ['gate'])));
    replayed.status.gate = 'running';
    settle(replayed, done('gate', { result: true }));
    expect(refs(planNext(replayed).start)).toEqual(['yes']);
  });
});
