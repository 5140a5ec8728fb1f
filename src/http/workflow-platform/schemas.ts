import { z } from 'zod';
import { parseSince } from '../../core/runs/run-query.js';
import { EXECUTION_STATUSES, TASK_STATUSES } from './present.js';
import { TRIGGER_TYPES } from './trigger.js';

/** `a,b` or a repeated parameter → the distinct words, each one of `words`. */
const wordList = <W extends string>(words: readonly W[]) => z.union([z.string(), z.array(z.string())])
  .transform((v, ctx): W[] => {
    const items = [...new Set((Array.isArray(v) ? v.join(',') : v).split(',').map((x) => x.trim()).filter(Boolean))];
    const unknown = items.filter((x) => !words.includes(x as W));
    if (unknown.length || !items.length) {
      ctx.addIssue({ code: 'custom', message: `${unknown.length ? `unknown: ${unknown.join(', ')}; ` : ''}one or more of ${words.join(', ')} (comma-separated)` });
      return z.NEVER;
    }
    return items as W[];
  });

export const since = z.string().max(64).transform((v, ctx): Date => {
  const at = parseSince(v);
  if (!at) {
    ctx.addIssue({ code: 'custom', message: 'RFC 3339 (2026-03-25T10:00:00Z) or a duration ago (30m, 24h, 7d)' });
    return z.NEVER;
  }
  return at;
});

/** Text PostgreSQL can hold: no NUL (neither `text` nor `jsonb` takes one). */
export const storable = z.string().regex(/^[^\u0000]*$/, 'must not contain NUL characters');

/** Whether a JSON value holds a NUL in any string or key (jsonb refuses it). */
export function holdsNul(value: unknown): boolean {
  let found = false;
  JSON.stringify(value, (k, v) => {
    if (k.includes('\u0000') || (typeof v === 'string' && v.includes('\u0000'))) found = true;
    return v;
  });
  return found;
}

export const count = (min: number, max: number, fallback: number) =>
  z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(min, `at least ${min}`).max(max, `at most ${max}`).default(fallback);

export const listQuery = z.strictObject({
  flowId: z.string().min(1).max(200).optional(),
  namespace: z.string().min(1).max(63).optional(),
  status: wordList(EXECUTION_STATUSES).optional(),
  trigger: wordList(TRIGGER_TYPES).optional(),
  since: since.optional(),
  limit: count(1, 500, 50),
  offset: count(0, 10_000, 0),
  before: z.uuid('an execution id (the last one of the previous page)').optional(),
});

export const executionParams = z.strictObject({ id: z.string().min(1).max(200) });

/** The JSON fallback of the log stream: a page of lines after `offset`. */
export const logsQuery = z.strictObject({
  offset: count(0, 2_147_483_647, 0),
  limit: count(1, 1_000, 1_000),
});

/** The WebSocket's query: where to resume. (Never a token: access logs keep URLs.) */
export const streamQuery = z.strictObject({ offset: count(0, 2_147_483_647, 0) });

const when = z.string().nullable();

/** Documentation of the answers (/openapi.json). */
export const executionSchema = z.object({
  id: z.string(), flowId: z.string(), flowName: z.string(), namespace: z.string().nullable(), flowRevision: z.number().int().nullable(),
  status: z.enum(EXECUTION_STATUSES), coreStatus: z.string(), inputs: z.record(z.string(), z.unknown()), result: z.record(z.string(), z.unknown()),
  error: z.string().nullable(), trigger: z.object({ type: z.enum(TRIGGER_TYPES), by: z.string(), triggerId: z.string().nullable() }),
  retryOf: z.string().nullable(), parentExecutionId: z.string().nullable(), tasksTotal: z.number().int(), tasksExecuted: z.number().int(),
  createdAt: z.string(), startedAt: when, finishedAt: when, durationMs: z.number().int().nullable(),
});

export const taskSchema = z.object({
  taskName: z.string(), taskType: z.string(), status: z.enum(TASK_STATUSES), outputs: z.string().nullable(), startedAt: when, finishedAt: when,
  error: z.string().optional(), attempt: z.number().int(), approvalId: z.string().optional(),
});

export const executionDetailSchema = z.object({ execution: executionSchema, tasks: z.array(taskSchema) });

export const startedSchema = z.object({ executionId: z.string(), status: z.literal('QUEUED'), tasksTotal: z.number().int(), retryOf: z.string() });

export const logLineSchema = z.object({
  seq: z.number().int(), timestamp: z.string(), level: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']), task: z.string().nullable(), message: z.string(),
});
