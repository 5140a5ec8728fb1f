import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a request's timestamp may be from our clock, either way (Slack's own rule). */
export const MAX_SKEW_SECONDS = 5 * 60;

export type Verification = { ok: true } | { ok: false; reason: string };

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Checks that a request comes from Slack: `v0=` HMAC-SHA256 of `v0:{timestamp}:{raw body}` with
 * the signing secret, compared in constant time, and a timestamp within five minutes of `now`
 * (milliseconds). Pure: the clock is passed in. Headers are Node's (lower-case names).
 */
export function verifySlackSignature(rawBody: string | Buffer, headers: Headers, secret: string, now: number): Verification {
  if (!secret) return { ok: false, reason: 'no signing secret configured' };
  const timestamp = header(headers, 'x-slack-request-timestamp');
  const signature = header(headers, 'x-slack-signature');
  if (!timestamp || !signature) return { ok: false, reason: 'x-slack-request-timestamp or x-slack-signature header missing' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'x-slack-request-timestamp is not a number of seconds' };
  if (Math.abs(Math.floor(now / 1000) - Number(timestamp)) > MAX_SKEW_SECONDS)
    return { ok: false, reason: `x-slack-request-timestamp is more than ${MAX_SKEW_SECONDS / 60} minutes from the server clock` };
  if (!signature.startsWith('v0=')) return { ok: false, reason: 'x-slack-signature is not a v0 signature' };
  const expected = Buffer.from(signSlackBody(secret, timestamp, rawBody), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'x-slack-signature does not match the body' };
  return { ok: true };
}

/** The `x-slack-signature` value Slack sends for a body at a timestamp (seconds). */
export function signSlackBody(secret: string, timestamp: string | number, rawBody: string | Buffer): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`v0:${timestamp}:`);
  hmac.update(rawBody);
  return `v0=${hmac.digest('hex')}`;
}
