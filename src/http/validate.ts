import type { z } from 'zod';
import { validationFailed, type FieldProblem } from '../errors.js';

/** Parses one part of a request; problems name the field (`payload.id`, `limit`, ...). */
export function validate<T>(schema: z.ZodType<T>, value: unknown, location: FieldProblem['location']): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const err = validationFailed(parsed.error.issues.map((i) => ({
    field: i.path.length ? i.path.join('.') : location === 'body' ? '(body)' : `(${location})`,
    message: i.message,
    location,
  })));
  // The issues themselves, for a dialect whose errors carry more than field and message (never sent as they are).
  err.cause = parsed.error;
  throw err;
}
