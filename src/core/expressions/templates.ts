import { evaluate, syntaxProblem } from './expressions.js';

const WHOLE = /^\{\{\s*([\s\S]+?)\s*\}\}$/;
const PART = /\{\{\s*([\s\S]+?)\s*\}\}/g;

/**
 * Renders `{{ expr }}` templates inside any JSON value. A string that is exactly one
 * template keeps the expression's type; other strings interpolate values as text.
 */
export function render(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole && !whole[1].includes('}}')) return evaluate(whole[1], context);
    return value.replace(PART, (_, expr: string) => asText(evaluate(expr, context)));
  }
  if (Array.isArray(value)) return value.map((v) => render(v, context));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = render(v, context);
    return out;
  }
  return value;
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
      const p = syntaxProblem(m[1]);
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
