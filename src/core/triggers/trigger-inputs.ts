import { invalidContent } from '../../errors.js';
import { ExpressionError } from '../expressions/expressions.js';
import { mentionsCredentials, render, templateProblems } from '../expressions/templates.js';

export interface InputIssue {
  path: string;
  message: string;
}

/** What `trigger` holds when an inputs template is rendered. */
export type TriggerScope =
  | { type: 'cron'; triggerId: string; by: string; scheduledFor: string; firedAt: string }
  | { type: 'webhook'; triggerId: string; by: string; body: unknown; headers: Record<string, string>; query: Record<string, unknown> };

/**
 * What is wrong with an inputs template: expressions that do not parse, and credentials (inputs are
 * stored and shown with the execution, so a secret rendered into them would be too).
 */
export function templateIssues(inputs: Record<string, unknown>): InputIssue[] {
  const issues = templateProblems(inputs).map((p) => ({ path: ['inputs', ...p.path].join('.'), message: p.message }));
  for (const [key, value] of Object.entries(inputs)) {
    if (mentionsCredentials(value)) issues.push({ path: `inputs.${key}`, message: 'credentials cannot be used here: inputs are stored and shown with the execution' });
  }
  return issues;
}

/**
 * The inputs of one firing. With a template: it rendered with `trigger` in scope (refused with 422,
 * by key, when an expression fails). Without: a webhook's body, which must then be a JSON object
 * (or a form; nothing is `{}`), and nothing for a cron.
 */
export function inputsOf(template: Record<string, unknown> | null, trigger: TriggerScope): Record<string, unknown> {
  if (template === null) {
    if (trigger.type === 'cron' || trigger.body === null || trigger.body === undefined) return {};
    if (typeof trigger.body === 'object' && !Array.isArray(trigger.body)) return trigger.body as Record<string, unknown>;
    throw invalidContent('without an inputs template the body is the inputs: it must be a JSON object', {
      errors: [{ path: 'inputs', message: `the body is ${Array.isArray(trigger.body) ? 'an array' : `a ${typeof trigger.body}`}, not a JSON object (or give the trigger an inputs template)` }],
    });
  }
  const out: Record<string, unknown> = {};
  const issues: InputIssue[] = [];
  for (const [key, value] of Object.entries(template)) {
    try {
      out[key] = render(value, { trigger });
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      issues.push({ path: `inputs.${key}`, message: err.message });
    }
  }
  if (issues.length) throw invalidContent(`the trigger's inputs template could not be rendered: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { errors: issues });
  return out;
}
