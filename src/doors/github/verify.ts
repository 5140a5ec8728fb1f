import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-hub-signature-256';

/** GitHub's signature of a delivery: `sha256=` and the hex HMAC-SHA256 of the raw body. */
export function signPayload(secret: string, raw: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/**
 * Whether `X-Hub-Signature-256` signs these exact bytes with one of the secrets (the current one,
 * or the previous one while a rotation is under way). Constant-time per secret; every secret is
 * tried, so the time taken does not tell which one matched. Pure: the route only moves bytes.
 */
export function verifySignature(raw: Buffer, header: string | undefined, secrets: readonly string[]): boolean {
  if (!header || !/^sha256=[0-9a-f]{64}$/i.test(header)) return false;
  const given = Buffer.from(header.slice('sha256='.length).toLowerCase(), 'hex');
  let ok = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(raw).digest();
    ok = timingSafeEqual(given, expected) || ok;
  }
  return ok;
}
