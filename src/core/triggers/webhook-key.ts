import { createHash, randomBytes } from 'node:crypto';

/** A key given by the caller (URLs kept from another engine): 32–128 URL-safe characters. */
export const GIVEN_KEY = /^[A-Za-z0-9_-]{32,128}$/;

/** A new key: 32 random bytes, base64url (43 characters). */
export const newWebhookKey = (): string => randomBytes(32).toString('base64url');

/** What is stored and looked up: the key's SHA-256 (hex). Any string hashes, so every request takes the same path. */
export const keyDigest = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');
