import type { IncomingHttpHeaders } from 'node:http';
import { badRequest } from '../../errors.js';

/** Where a webhook's signature may come: ours, or GitHub's name for the same scheme. */
export const SIGNATURE_HEADERS = ['x-signature-256', 'x-hub-signature-256'] as const;

/** Never shown to a flow: credentials and signatures. */
const HIDDEN = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-hub-signature', ...SIGNATURE_HEADERS]);

/** The request's headers as a flow sees them (`trigger.headers`): lower-cased names, credentials and signatures left out. */
export function shownHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    if (value === undefined || HIDDEN.has(key)) continue;
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** The signature a request carries, if any. */
export const signatureOf = (headers: IncomingHttpHeaders): string | undefined => {
  for (const name of SIGNATURE_HEADERS) {
    const v = headers[name];
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
};

/** A repeated delivery's key: `Idempotency-Key`, else GitHub's `X-GitHub-Delivery`. */
export const deliveryKeyOf = (headers: IncomingHttpHeaders): string | undefined => {
  const v = headers['idempotency-key'] ?? headers['x-github-delivery'];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
};

/** The body as `trigger.body`: JSON → its value, a form → its fields as strings, anything else → text; nothing → null. */
export function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (!raw.length) return null;
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const text = raw.toString('utf8');
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw badRequest(`Request body is not valid JSON: ${(err as Error).message}`, [{ field: '(body)', message: 'not valid JSON', location: 'body' }]);
    }
  }
  return text;
}
