import { randomInt, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { newId } from '../core/ids.js';
import { inputOf, plugin } from './plugin.js';

const uuidInput = z.strictObject({ version: z.union([z.literal(4), z.literal(7)]).default(4) });
export const utilUuid = plugin({
  id: 'util.uuid', name: 'UUID', category: 'utility',
  description: 'A new UUID: version 4 (random) or 7 (time-ordered).',
  input: uuidInput, output: z.object({ uuid: z.string() }),
  run: async (c) => ({ uuid: inputOf(c, uuidInput).version === 7 ? newId() : randomUUID() }),
});

const randomInput = z.union([
  z.strictObject({ min: z.number().int(), max: z.number().int() }).refine((r) => r.max > r.min && r.max - r.min <= 2 ** 48 - 1, 'max must be above min (by at most 2^48 - 1)'),
  z.strictObject({ length: z.number().int().min(1).max(1024), alphabet: z.string().min(2).max(256).default('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789') }),
]);
export const utilRandom = plugin({
  id: 'util.random', name: 'Random value', category: 'utility',
  description: 'A random integer in [min, max), or a random string of a length from an alphabet; from the system\'s secure generator.',
  input: randomInput, output: z.object({ value: z.union([z.number(), z.string()]) }),
  run: async (c) => {
    const i = inputOf(c, randomInput);
    if ('min' in i) return { value: randomInt(i.min, i.max) };
    const chars = [...i.alphabet];
    return { value: Array.from({ length: i.length }, () => chars[randomInt(chars.length)]).join('') };
  },
});

export const UTILITIES = [utilUuid, utilRandom];
