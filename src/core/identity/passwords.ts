import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** scrypt N = 2^15, r 8, p 1: about 32 MiB and tens of milliseconds per hash. */
const LOG_N = 15;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const MAXMEM = 64 * 1024 * 1024;
const STORED = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

const derive = (password: string, salt: Buffer, options: ScryptOptions, bytes: number) =>
  new Promise<Buffer>((resolve, reject) => scrypt(password.normalize('NFC'), salt, bytes, options, (err, key) => (err ? reject(err) : resolve(key))));

/** `scrypt$15$8$1$<salt>$<hash>` (base64), the only form passwords are stored in. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, { N: 2 ** LOG_N, r: R, p: P, maxmem: MAXMEM }, KEY_BYTES);
  return `scrypt$${LOG_N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A hash of no one's password: an unknown username is checked against it, so it costs the same. */
let decoy: Promise<string> | undefined;
const decoyHash = () => (decoy ??= hashPassword(randomBytes(24).toString('base64')));

/** Whether `password` matches `stored` (constant time); without `stored` the decoy is hashed and it never matches. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const m = STORED.exec(stored ?? (await decoyHash()));
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5], 'base64');
  const key = await derive(password, Buffer.from(m[4], 'base64'), { N: 2 ** logN, r, p, maxmem: MAXMEM }, expected.length);
  return timingSafeEqual(key, expected) && stored !== null;
}

/** Why a password is refused, or undefined: 12–256 characters and not the username; no composition rules. */
export function passwordProblem(password: string, username: string): string | undefined {
  if (password.length < PASSWORD_MIN) return `must be at least ${PASSWORD_MIN} characters`;
  if (password.length > PASSWORD_MAX) return `must be at most ${PASSWORD_MAX} characters`;
  if (password.toLowerCase() === username.toLowerCase()) return 'must not be the username';
  return undefined;
}
