import { createHash } from 'node:crypto';
import { uuidv7 } from 'uuidv7';

/** Time-ordered ids: new rows land at the end of their indexes. */
export const newId = (): string => uuidv7();

export const isUuid = (v: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);

/** A UUID derived from a seed: the same seed always gives the same id (idempotent creation). */
export function idFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
