import { evaluate, evaluateCondition, ExpressionError, syntaxProblem } from '../../src/core/expressions/expressions.js';

const ctx = {
  payload: { x: 2, half: 1.5, name: 'abc', list: [1, 2, 3], obj: { a: 1, b: 'x', nested: { deep: [10, 20] } }, flag: true, off: false, nothing: null },
  steps: { build: { status: 'completed', output: { status: 200, children: ['a', 'b'] } } },
};

describe('evaluate', () => {
  test('integer arithmetic on JSON numbers gives a JS number', () => {
    const v = evaluate('payload.x + 1', ctx);
    expect(v).toBe(3);
    expect(typeof v).toBe('number');
  });

  test('multiplication and indexing of integers', () => {
    expect(evaluate('payload.x * 2', ctx)).toBe(4);
    expect(evaluate('payload.list[1] + 1', ctx)).toBe(3);
    expect(evaluate('payload.obj.nested.deep[1] - payload.obj.a', ctx)).toBe(19);
  });

  test('size() returns a number', () => {
    expect(evaluate('size(payload.list)', ctx)).toBe(3);
    expect(evaluate('size(steps.build.output.children)', ctx)).toBe(2);
  });

  test('non-integer numbers stay doubles', () => {
    expect(evaluate('payload.half', ctx)).toBe(1.5);
    expect(evaluate('payload.half * 2.0', ctx)).toBe(3);
  });

  test('strings, booleans and null', () => {
    expect(evaluate('payload.name + "d"', ctx)).toBe('abcd');
    expect(evaluate('payload.name.startsWith("a")', ctx)).toBe(true);
    expect(evaluate('payload.flag && !payload.off', ctx)).toBe(true);
    expect(evaluate('payload.nothing', ctx)).toBeNull();
  });

  test('lists and maps come back as plain JSON', () => {
    const list = evaluate('payload.list', ctx);
    expect(list).toEqual([1, 2, 3]);
    expect(Array.isArray(list)).toBe(true);
    expect((list as unknown[]).every((n) => typeof n === 'number')).toBe(true);
    const obj = evaluate('payload.obj', ctx) as Record<string, unknown>;
    expect(obj).toEqual({ a: 1, b: 'x', nested: { deep: [10, 20] } });
    expect(obj instanceof Map).toBe(false);
    expect(typeof obj.a).toBe('number');
  });

  test('list and map literals', () => {
    expect(evaluate('[1, "a", true]', ctx)).toEqual([1, 'a', true]);
    expect(evaluate('{"k": payload.x, "s": "v"}', ctx)).toEqual({ k: 2, s: 'v' });
  });

  test('comparisons', () => {
    expect(evaluate('payload.x == 2', ctx)).toBe(true);
    expect(evaluate('payload.x > 5', ctx)).toBe(false);
    expect(evaluate('steps.build.output.status == 200', ctx)).toBe(true);
    expect(evaluate('"b" in steps.build.output.children', ctx)).toBe(true);
  });

  test('a syntax error throws an ExpressionError naming the expression', () => {
    expect(() => evaluate('1 +', ctx)).toThrow(ExpressionError);
    expect(() => evaluate('1 +', ctx)).toThrow(/^expression "1 \+": /);
  });

  test('a missing key throws an ExpressionError', () => {
    let error: unknown;
    try {
      evaluate('payload.missing', ctx);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ExpressionError);
    expect((error as ExpressionError).expression).toBe('payload.missing');
    expect((error as ExpressionError).name).toBe('ExpressionError');
    expect((error as Error).message).toContain('payload.missing');
  });

  test('an unknown variable throws', () => {
    expect(() => evaluate('nope.x', ctx)).toThrow(ExpressionError);
  });

  test('division by zero throws', () => {
    expect(() => evaluate('payload.x / 0', ctx)).toThrow(ExpressionError);
  });

  test('the error message is a single line', () => {
    try {
      evaluate('(((', ctx);
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  test('the context is not modified', () => {
    const local = { payload: { x: 2, list: [1, 2] } };
    evaluate('payload.x + size(payload.list)', local);
    expect(local).toEqual({ payload: { x: 2, list: [1, 2] } });
    expect(typeof local.payload.x).toBe('number');
  });
});

describe('evaluateCondition', () => {
  test('returns booleans', () => {
    expect(evaluateCondition('payload.flag', ctx)).toBe(true);
    expect(evaluateCondition('payload.off', ctx)).toBe(false);
    expect(evaluateCondition('payload.x > 1', ctx)).toBe(true);
  });

  test('rejects a number', () => {
    expect(() => evaluateCondition('payload.x', ctx)).toThrow(ExpressionError);
    expect(() => evaluateCondition('payload.x', ctx)).toThrow('must be a boolean, got 2');
  });

  test('rejects a string, null and a list', () => {
    expect(() => evaluateCondition('payload.name', ctx)).toThrow('must be a boolean, got "abc"');
    expect(() => evaluateCondition('payload.nothing', ctx)).toThrow('must be a boolean, got null');
    expect(() => evaluateCondition('payload.list', ctx)).toThrow('must be a boolean, got [1,2,3]');
  });

  test('propagates syntax errors', () => {
    expect(() => evaluateCondition('payload.x ==', ctx)).toThrow(ExpressionError);
  });
});

describe('syntaxProblem', () => {
  test('is undefined for valid expressions, even with unknown variables', () => {
    expect(syntaxProblem('payload.x + 1')).toBeUndefined();
    expect(syntaxProblem('anything.at.all == "x"')).toBeUndefined();
    expect(syntaxProblem('size(steps.a.output) > 0 && payload.flag')).toBeUndefined();
  });

  test('describes the problem of an invalid expression on one line', () => {
    for (const bad of ['1 +', 'payload.x ==', '(a', ')', 'a b']) {
      const p = syntaxProblem(bad);
      expect(typeof p).toBe('string');
      expect(p!.length).toBeGreaterThan(0);
      expect(p).not.toContain('\n');
    }
  });
});

test('an expression evaluated again sees each context afresh (parsed once, checked per value)', () => {
  const expr = 'payload.x + payload.y';
  expect(evaluate(expr, { payload: { x: 1, y: 2 } })).toBe(3);
  expect(evaluate(expr, { payload: { x: 'a', y: 'b' } })).toBe('ab');
  expect(() => evaluate(expr, { payload: { x: 1, y: 'b' } })).toThrow(/no such overload/);
  expect(evaluate(expr, { payload: { x: [1], y: [2] } })).toEqual([1, 2]);
  expect(evaluate('payload.n * 2', { payload: { n: 4 } })).toBe(8);
  expect(() => evaluate('payload.n * 2', { payload: { n: 1.5 } })).toThrow(/dyn<double> \* int/);
});

test('only the variables an expression reads are converted', () => {
  let stepsRead = 0;
  const context = { payload: { text: 'hi' }, get steps() { stepsRead++; return { a: { output: { n: 1 } } }; } };
  expect(evaluate('payload.text + "!"', context)).toBe('hi!');
  expect(stepsRead).toBe(0);
  expect(evaluate('steps.a.output.n + 1', context)).toBe(2);
  expect(stepsRead).toBe(1);
});
