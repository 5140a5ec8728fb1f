import type { Context } from 'koa';
import { AppError, badRequest } from '../errors.js';

const LIMIT = 1024 * 1024;

/** Reads the raw body once (webhook doors need the exact bytes) and parses JSON bodies. */
export async function readBody(ctx: Context): Promise<{ raw: Buffer; json: unknown }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > LIMIT) throw new AppError('bad_request', `Request body larger than ${LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  if (!raw.length) return { raw, json: undefined };
  const type = ctx.get('content-type');
  if (type && !/json/i.test(type)) throw badRequest(`Unsupported content type "${type}"; send application/json`, [{ field: 'content-type', message: 'must be application/json', location: 'header' }]);
  try {
    return { raw, json: JSON.parse(raw.toString('utf8')) };
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${(err as Error).message}`, [{ field: '(body)', message: 'not valid JSON', location: 'body' }]);
  }
}
