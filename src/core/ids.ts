import { uuidv7 } from 'uuidv7';

/** Time-ordered ids: new rows land at the end of their indexes. */
export const newId = (): string => uuidv7();

export const isUuid = (v: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
