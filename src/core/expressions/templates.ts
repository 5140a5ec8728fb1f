import { ExpressionError, evaluate, syntaxProblem } from './expressions.js';

const WHOLE = /^\{\{\s*([\s\S]+?)\s*\}\}$/;
const PART = /\{\{\s*([\s\S]+?)\s*\}\}/g;
const RAW = /^raw\s*\(([\s\S]*)\)$/;

/**
 * `{{ raw(expr) }}`: the value of `expr`, placed into a URL as it is (not percent-encoded).
 * `raw` must wrap the whole template; elsewhere than in a URL it changes nothing.
 */
function unwrapRaw(expr: string): { expr: string; raw: boolean } {
  const m = RAW.exec(expr.trim());
  return m && !syntaxProblem(m[1]) ? { expr: m[1], raw: true } : { expr, raw: false };
}

const evaluateTemplate = (expr: string, context: Record<string, unknown>) => evaluate(unwrapRaw(expr).expr, context);

/**
 * Renders `{{ expr }}` templates inside any JSON value. A string that is exactly one
 * template keeps the expression's type; other strings interpolate values as text.
 */
export function render(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole && !whole[1].includes('}}')) return evaluateTemplate(whole[1], context);
    return value.replace(PART, (_, expr: string) => asText(evaluateTemplate(expr, context)));
  }
  if (Array.isArray(value)) return value.map((v) => render(v, context));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = render(v, context);
    return out;
  }
  return value;
}

/**
 * Renders a URL template. A template at the very start is the URL's base (a configured API
 * address, say) and is inserted as it is; every other value is percent-encoded, so a payload
 * value stays inside its path segment or query parameter (`../admin?x` → `..%2Fadmin%3Fx`).
 * `{{ raw(expr) }}` opts a value out of the encoding.
 */
export function renderUrl(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value !== 'string') return render(value, context);
  const whole = WHOLE.exec(value);
  if (whole && !whole[1].includes('}}')) return evaluateTemplate(whole[1], context);
  return value.replace(PART, (_, expr: string, offset: number) => {
    const { expr: inner, raw } = unwrapRaw(expr);
    const text = asText(evaluate(inner, context));
    if (raw || offset === 0) return text;
    // `.` and `..` are path steps however they are encoded (%2e is a dot to URL parsers).
    if (text === '.' || text === '..') throw new ExpressionError(inner, `the value "${text}" cannot be placed in a URL: it would change the path`);
    return encodeURIComponent(text);
  });
}

function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Every expression used in a value's templates, with its path, for load-time checks. */
export function templateProblems(value: unknown, path: (string | number)[] = []): { path: (string | number)[]; message: string }[] {
  if (typeof value === 'string') {
    const problems = [];
    for (const m of value.matchAll(PART)) {
      const p = syntaxProblem(unwrapRaw(m[1]).expr);
      if (p) problems.push({ path, message: `invalid expression "${m[1]}": ${p}` });
    }
    return problems;
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => templateProblems(v, [...path, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => templateProblems(v, [...path, k]));
  return [];
}

/** Whether any template expression in a value reads `credentials`: such values are resolved only inside the step that uses them. */
export function mentionsCredentials(value: unknown): boolean {
  if (typeof value === 'string') return [...value.matchAll(PART)].some((m) => /\bcredentials\b/.test(m[1]));
  if (Array.isArray(value)) return value.some(mentionsCredentials);
  if (value && typeof value === 'object') return Object.values(value).some(mentionsCredentials);
  return false;
}

/** The text of every `{{ expr }}` in a value, for load-time rules on what a field may read. */
export function templateExpressions(value: unknown): string[] {
  if (typeof value === 'string') return [...value.matchAll(PART)].map((m) => m[1]);
  if (Array.isArray(value)) return value.flatMap(templateExpressions);
  if (value && typeof value === 'object') return Object.values(value).flatMap(templateExpressions);
  return [];
}
