import type { Context } from 'koa';
import { AppError, badRequest } from '../errors.js';

const LIMIT = 1024 * 1024;

/** A request body (or a part of it with its own limit) over its limit (the caller answers 413 or 400 in its own words). */
export class BodyTooLarge extends AppError {
  constructor(readonly limit: number, message = `Request body larger than ${limit} bytes`) {
    super('bad_request', message);
  }
}

/** Reads the raw bytes of a request once (webhook doors check signatures over the exact bytes), up to `limit`. */
export async function readRaw(ctx: Context, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads the raw body once and parses JSON bodies. */
export async function readBody(ctx: Context, limit = LIMIT): Promise<{ raw: Buffer; json: unknown }> {
  const raw = await readRaw(ctx, limit);
  if (!raw.length) return { raw, json: undefined };
  const type = ctx.get('content-type');
  if (type && !/json/i.test(type)) throw badRequest(`Unsupported content type "${type}"; send application/json`, [{ field: 'content-type', message: 'must be application/json', location: 'header' }]);
  try {
    return { raw, json: JSON.parse(raw.toString('utf8')) };
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${(err as Error).message}`, [{ field: '(body)', message: 'not valid JSON', location: 'body' }]);
  }
}
