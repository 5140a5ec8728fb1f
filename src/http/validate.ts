import type { z } from 'zod';
import { validationFailed, type FieldProblem } from '../errors.js';

/** Parses one part of a request; problems name the field (`payload.id`, `limit`, ...). */
export function validate<T>(schema: z.ZodType<T>, value: unknown, location: FieldProblem['location']): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw validationFailed(parsed.error.issues.map((i) => ({
    field: i.path.length ? i.path.join('.') : location === 'body' ? '(body)' : `(${location})`,
    message: i.message,
    location,
  })));
}
