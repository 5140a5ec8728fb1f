import { createHash } from 'node:crypto';

/** One AES-256 key and the id rows name it by (the first 8 hex of its SHA-256). */
export interface EncryptionKey {
  id: string;
  bytes: Buffer;
}

/** The key new writes use, and older ones that still decrypt rows written under them. */
export interface EncryptionKeys {
  current: EncryptionKey;
  previous: EncryptionKey[];
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;
const KEY_HINT = 'must be 32 bytes written as 64 hex characters or as base64 (e.g. the output of `openssl rand -hex 32`)';

/** The id of a key: never the key, so it may be logged and stored. */
export const keyIdOf = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex').slice(0, 8);

/** A key as written in a setting, or null when it is not 32 bytes in hex or base64. */
export function parseKey(text: string): EncryptionKey | null {
  const t = text.trim();
  let bytes: Buffer | null = null;
  if (HEX_KEY.test(t)) bytes = Buffer.from(t, 'hex');
  else if (BASE64_KEY.test(t)) bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes && bytes.length === 32 ? { id: keyIdOf(bytes), bytes } : null;
}

/**
 * FLOWGATE_ENCRYPTION_KEY and FLOWGATE_ENCRYPTION_KEYS_PREVIOUS (comma-separated) as keys, or the
 * problems with them by setting name (the messages never contain a key). No current key: undefined
 * (credential storage is off).
 */
export function readEncryptionKeys(env: { FLOWGATE_ENCRYPTION_KEY?: string; FLOWGATE_ENCRYPTION_KEYS_PREVIOUS?: string }): { keys?: EncryptionKeys; problems: string[] } {
  const problems: string[] = [];
  const currentText = env.FLOWGATE_ENCRYPTION_KEY?.trim();
  const previousTexts = (env.FLOWGATE_ENCRYPTION_KEYS_PREVIOUS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if (!currentText) {
    if (previousTexts.length) problems.push('FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: set FLOWGATE_ENCRYPTION_KEY (the current key) as well');
    return { problems };
  }
  const current = parseKey(currentText);
  if (!current) problems.push(`FLOWGATE_ENCRYPTION_KEY: ${KEY_HINT}`);
  const previous: EncryptionKey[] = [];
  previousTexts.forEach((text, i) => {
    const key = parseKey(text);
    if (!key) problems.push(`FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: entry ${i + 1} ${KEY_HINT}`);
    else if (key.id !== current?.id && !previous.some((k) => k.id === key.id)) previous.push(key);
  });
  return problems.length || !current ? { problems } : { keys: { current, previous }, problems };
}
