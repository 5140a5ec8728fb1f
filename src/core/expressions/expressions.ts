import { Environment, parse } from '@marcbachmann/cel-js';

/**
 * Flow expressions are CEL, evaluated by a sandboxed interpreter (never `eval`).
 * CEL distinguishes int from double; JSON payloads do not. Integral numbers therefore
 * enter CEL as ints (so `payload.minutes * 2` works) and every result leaves as plain JSON.
 */
const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });

export class ExpressionError extends Error {
  constructor(readonly expression: string, reason: string) {
    super(`expression "${expression}": ${reason}`);
    this.name = 'ExpressionError';
  }
}

function toCel(value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (value instanceof Date) return value;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v);
    return out;
  }
  return value;
}

function fromCel(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), fromCel(v)]));
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromCel(v);
    return out;
  }
  return value;
}

/**
 * Parsed expressions by text: `env.evaluate` parses and type-checks its text on every call, and
 * a flow evaluates the same few expressions for every run. Bounded (oldest out first): the texts
 * come from flow definitions, which are bounded too.
 */
const parsed = new Map<string, ReturnType<typeof env.parse>>();
const PARSED_MAX = 2000;

function compiled(expression: string): ReturnType<typeof env.parse> {
  let fn = parsed.get(expression);
  if (fn === undefined) {
    fn = env.parse(expression);
    if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value!);
    parsed.set(expression, fn);
  }
  return fn;
}

/**
 * The context as CEL sees it, each top-level variable converted only when the expression reads
 * it: converting all of them (every step's output, the project's people) for every expression
 * was most of an expression's cost.
 */
function celScope(context: Record<string, unknown>): Record<string, unknown> {
  const scope: Record<string, unknown> = {};
  for (const key of Object.keys(context)) {
    let converted: unknown;
    let done = false;
    Object.defineProperty(scope, key, {
      enumerable: true,
      get: () => {
        if (!done) [converted, done] = [toCel(context[key]), true];
        return converted;
      },
    });
  }
  return scope;
}

export function evaluate(expression: string, context: Record<string, unknown>): unknown {
  try {
    return fromCel(compiled(expression)(celScope(context)));
  } catch (err) {
    throw new ExpressionError(expression, firstLine(err));
  }
}

export function evaluateCondition(expression: string, context: Record<string, unknown>): boolean {
  const value = evaluate(expression, context);
  if (typeof value !== 'boolean') throw new ExpressionError(expression, `must be a boolean, got ${JSON.stringify(value)}`);
  return value;
}

/** Syntax check at manifest load time; returns the problem or undefined. */
export function syntaxProblem(expression: string): string | undefined {
  try {
    parse(expression);
    return undefined;
  } catch (err) {
    return firstLine(err);
  }
}

const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0];
