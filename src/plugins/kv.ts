import { z } from 'zod';
import { KV_KEY, KvRefusal, type KvStore } from '../core/kv/kv-store.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { inputOf, plugin } from './plugin.js';

const key = z.string().regex(KV_KEY, '1–255 of letters, digits and . _ : / -, without a leading, trailing or double /');

/** The store, in the execution's own namespace only; a refused write fails the step for good. */
async function inNamespace<T>(c: KindCall, act: (kv: KvStore, project: string) => Promise<T>): Promise<T> {
  try {
    return await act(c.extra.kv, c.run.repositoryIdentifier);
  } catch (err) {
    if (err instanceof KvRefusal) throw new StepFailure(err.message, false);
    throw err;
  }
}

const getInput = z.strictObject({ key, default: z.unknown().optional() });
export const kvGet = plugin({
  id: 'kv.get', name: 'Read a key', category: 'utility',
  description: 'Reads a key of the execution\'s namespace: `{value, found}`; an absent or expired key gives `default` (null without one).',
  input: getInput, output: z.object({ value: z.unknown(), found: z.boolean() }),
  run: async (c) => {
    const i = inputOf(c, getInput);
    const entry = await inNamespace(c, (kv, p) => kv.get(p, i.key));
    return entry ? { value: entry.value, found: true } : { value: i.default ?? null, found: false };
  },
});

const setInput = z.strictObject({ key, value: z.unknown(), ttlSeconds: z.number().int().min(1).max(31_536_000).optional() });
export const kvSet = plugin({
  id: 'kv.set', name: 'Write a key', category: 'utility',
  description: 'Sets a key of the execution\'s namespace to any JSON value (at most 64 KiB), optionally expiring after `ttlSeconds`.',
  input: setInput, output: z.object({ created: z.boolean() }),
  run: async (c) => {
    const i = inputOf(c, setInput);
    const { created } = await inNamespace(c, (kv, p) => kv.set(p, i.key, i.value, i.ttlSeconds));
    c.note('info', `Key ${i.key} ${created ? 'created' : 'updated'}${i.ttlSeconds ? ` (expires in ${i.ttlSeconds}s)` : ''}`);
    return { created };
  },
});

const keyInput = z.strictObject({ key });
export const kvDelete = plugin({
  id: 'kv.delete', name: 'Delete a key', category: 'utility',
  description: 'Deletes a key of the execution\'s namespace: `{deleted}` says whether it was there.',
  input: keyInput, output: z.object({ deleted: z.boolean() }),
  run: async (c) => {
    const i = inputOf(c, keyInput);
    const deleted = await inNamespace(c, (kv, p) => kv.delete(p, i.key));
    c.note('info', `Key ${i.key} ${deleted ? 'deleted' : 'was not there'}`);
    return { deleted };
  },
});

const incrementInput = z.strictObject({ key, by: z.number().finite().default(1) });
export const kvIncrement = plugin({
  id: 'kv.increment', name: 'Increment a counter', category: 'utility',
  description: 'Adds `by` (1) to a number key of the execution\'s namespace in one statement (an absent key counts from 0); a key that is not a number fails the step.',
  input: incrementInput, output: z.object({ value: z.number() }),
  run: async (c) => {
    const i = inputOf(c, incrementInput);
    const value = await inNamespace(c, (kv, p) => kv.increment(p, i.key, i.by));
    c.note('info', `Key ${i.key} is now ${value}`);
    return { value };
  },
});

const listInput = z.strictObject({ prefix: z.string().max(255).optional(), limit: z.number().int().min(1).max(1_000).default(100) });
export const kvList = plugin({
  id: 'kv.list', name: 'List keys', category: 'utility',
  description: 'The live keys of the execution\'s namespace, by name, optionally under a prefix (at most `limit`, 100).',
  input: listInput, output: z.object({ keys: z.array(z.string()) }),
  run: async (c) => {
    const i = inputOf(c, listInput);
    return { keys: (await inNamespace(c, (kv, p) => kv.list(p, { prefix: i.prefix, limit: i.limit }))).map((e) => e.key) };
  },
});

export const KV_PLUGINS = [kvGet, kvSet, kvDelete, kvIncrement, kvList];
