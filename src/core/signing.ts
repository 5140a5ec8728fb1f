import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures on what Flowgate sends (webhook callbacks, CI/CD dispatches, external approval
 * decisions): `x-flowgate-signature-256: t=<unix seconds>,v1=<hex>` where
 *   key = HMAC-SHA256(secret, "flowgate/" + purpose)
 *   v1  = HMAC-SHA256(key, t + "." + purpose + "." + body)
 * The purpose is in both the key and the signed text, so a body signed for one use does not
 * verify as another; the timestamp lets a receiver refuse a replay after its tolerance.
 */
export const SIGNATURE_HEADER = 'x-flowgate-signature-256';

/** What a signed body is for: `run.notice` (webhook callbacks), `approval.decision`, `cicd.dispatch` (dispatch and cancel), `webhook.send` (the plugin). */
export type SignaturePurpose = 'run.notice' | 'approval.decision' | 'cicd.dispatch' | 'webhook.send';

/** How old (or how far ahead) a timestamp may be by default, in seconds. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

function purposeKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`flowgate/${purpose}`).digest();
}

function digest(secret: string, purpose: string, timestamp: number, body: string): string {
  return createHmac('sha256', purposeKey(secret, purpose)).update(`${timestamp}.${purpose}.${body}`).digest('hex');
}

/** The header value for `body` signed for `purpose` at `now` (epoch ms). */
export function signPayload(secret: string, purpose: SignaturePurpose, body: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${digest(secret, purpose, t, body)}`;
}

/**
 * Whether `header` is a valid signature of `body` for `purpose` made within `toleranceSec`
 * of `now`. Any `v1` may match (several are allowed, for secret rotation); compared in constant time.
 */
export function verifySignature(
  header: string | null | undefined, body: string, secret: string, purpose: string,
  toleranceSec = DEFAULT_TOLERANCE_SECONDS, now = Date.now(),
): boolean {
  if (!header || !secret) return false;
  let t: number | undefined;
  const given: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && /^\d{1,12}$/.test(v ?? '')) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) given.push(v);
  }
  if (t === undefined || !given.length || Math.abs(now / 1000 - t) > toleranceSec) return false;
  const expected = Buffer.from(digest(secret, purpose, t, body), 'hex');
  return given.some((v) => timingSafeEqual(Buffer.from(v, 'hex'), expected));
}

/** The `sha256=<hex HMAC-SHA256(secret, raw body)>` signature GitHub and webhook triggers use. */
export function hubSignature(secret: string, raw: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/**
 * Whether a `sha256=<hex>` header signs these exact bytes with one of the secrets (several while a
 * rotation is under way). Constant-time per secret; every secret is tried, so the time taken does
 * not tell which one matched.
 */
export function verifyHubSignature(raw: Buffer, header: string | undefined, secrets: readonly string[]): boolean {
  if (!header || !/^sha256=[0-9a-f]{64}$/i.test(header)) return false;
  const given = Buffer.from(header.slice('sha256='.length).toLowerCase(), 'hex');
  let ok = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(raw).digest();
    ok = timingSafeEqual(given, expected) || ok;
  }
  return ok;
}
