import { hubSignature, verifyHubSignature } from '../../core/signing.js';

export const SIGNATURE_HEADER = 'x-hub-signature-256';

/** GitHub's signature of a delivery: `sha256=` and the hex HMAC-SHA256 of the raw body. */
export const signPayload = (secret: string, raw: Buffer | string): string => hubSignature(secret, raw);

/**
 * Whether `X-Hub-Signature-256` signs these exact bytes with one of the secrets (the current one,
 * or the previous one while a rotation is under way). Pure: the route only moves bytes.
 */
export const verifySignature = (raw: Buffer, header: string | undefined, secrets: readonly string[]): boolean => verifyHubSignature(raw, header, secrets);
