import type { Context } from 'koa';
import { z } from 'zod';
import { readRaw } from '../http/body.js';
import { badRequest, validationFailed } from '../errors.js';

const FORM_LIMIT = 64 * 1024;

/** Reads an HTML form post (urlencoded) into an object; a field given twice becomes a list. */
export async function readForm(ctx: Context): Promise<Record<string, string | string[]>> {
  const type = ctx.get('content-type');
  if (!/^application\/x-www-form-urlencoded\b/i.test(type))
    throw badRequest(`Unsupported content type "${type}"; the console takes HTML forms`, [{ field: 'content-type', message: 'must be application/x-www-form-urlencoded', location: 'header' }]);
  const raw = await readRaw(ctx, FORM_LIMIT);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) {
    const had = out[k];
    out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return out;
}

/** Validates form or query fields with zod; problems name the field, as every dialect's 400 does. */
export function parseFields<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw validationFailed(r.error.issues.map((i) => ({ field: i.path.join('.') || '(form)', message: i.message, location: 'body' as const })));
}

/** A field that may come once or several times, as a list. */
export const many = z.preprocess((v) => (v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v]), z.array(z.string()));
