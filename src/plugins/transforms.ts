import { createHash, createHmac } from 'node:crypto';
import { z } from 'zod';
import { StepFailure } from '../engine/step-failure.js';
import { inputOf, plugin } from './plugin.js';

const base64Input = z.strictObject({ op: z.enum(['encode', 'decode']), value: z.string(), urlSafe: z.boolean().default(false) });
export const transformBase64 = plugin({
  id: 'transform.base64', name: 'Base64', category: 'transform',
  description: 'Encodes text (UTF-8) as base64 or decodes base64 to text; urlSafe uses the URL alphabet without padding.',
  input: base64Input, output: z.object({ value: z.string() }),
  run: async (c) => {
    const i = inputOf(c, base64Input);
    const encoding = i.urlSafe ? 'base64url' : 'base64';
    if (i.op === 'encode') return { value: Buffer.from(i.value, 'utf8').toString(encoding) };
    const alphabet = i.urlSafe ? /^[A-Za-z0-9_-]*$/ : /^[A-Za-z0-9+/]*={0,2}$/;
    if (!alphabet.test(i.value)) throw new StepFailure(`with.value: not ${i.urlSafe ? 'URL-safe ' : ''}base64`, false);
    return { value: Buffer.from(i.value, encoding).toString('utf8') };
  },
});

const hashInput = z.strictObject({ algorithm: z.enum(['sha256', 'sha512', 'sha1', 'md5']).default('sha256'), value: z.string(), hmacKey: z.string().min(1).optional() });
export const transformHash = plugin({
  id: 'transform.hash', name: 'Hash', category: 'transform',
  description: 'Hex digest of a text, or its HMAC when hmacKey is given (the key may be a credential).',
  input: hashInput, output: z.object({ hash: z.string() }), credentials: true,
  run: async (c) => {
    const i = inputOf(c, hashInput, { credentials: true });
    const h = i.hmacKey ? createHmac(i.algorithm, i.hmacKey) : createHash(i.algorithm);
    return { hash: h.update(i.value, 'utf8').digest('hex') };
  },
});

const object = z.record(z.string(), z.unknown());
const jsonInput = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('parse'), value: z.string() }),
  z.strictObject({ op: z.literal('stringify'), value: z.unknown(), indent: z.number().int().min(0).max(8).default(0) }),
  z.strictObject({ op: z.literal('merge'), value: object, with: z.array(object).min(1) }),
  z.strictObject({ op: z.literal('pick'), value: object, keys: z.array(z.string()).min(1) }),
  z.strictObject({ op: z.literal('omit'), value: object, keys: z.array(z.string()).min(1) }),
]);
export const transformJson = plugin({
  id: 'transform.json', name: 'JSON', category: 'transform',
  description: 'parse a JSON text, stringify a value, merge objects (later ones win, shallow), pick or omit keys of an object.',
  input: jsonInput, output: z.object({ value: z.unknown() }),
  run: async (c) => {
    const i = inputOf(c, jsonInput);
    switch (i.op) {
      case 'parse':
        try {
          return { value: JSON.parse(i.value) };
        } catch (err) {
          throw new StepFailure(`with.value: not JSON (${(err as Error).message})`, false);
        }
      case 'stringify':
        return { value: JSON.stringify(i.value ?? null, null, i.indent || undefined) };
      case 'merge':
        return { value: Object.assign({}, i.value, ...i.with) };
      case 'pick':
        return { value: Object.fromEntries(i.keys.filter((k) => k in i.value).map((k) => [k, i.value[k]])) };
      case 'omit':
        return { value: Object.fromEntries(Object.entries(i.value).filter(([k]) => !i.keys.includes(k))) };
    }
  },
});

export const TRANSFORMS = [transformBase64, transformHash, transformJson];
