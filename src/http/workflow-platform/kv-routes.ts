import { z } from 'zod';
import type { Services } from '../../container.js';
import { actorOf } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { KV_KEY, KV_MAX_VALUE_BYTES, KvRefusal, type KvEntry } from '../../core/kv/kv-store.js';
import { conflict, notFound } from '../../errors.js';
import { BodyTooLarge } from '../body.js';
import { route } from '../route.js';
import { visibleNamespace } from './namespace.js';
import { EDIT_ROLES } from './roles.js';
import { count, holdsNul, storable } from './schemas.js';

const namespaceParams = z.object({ namespace: z.string().min(1).max(63) });
const keyParams = namespaceParams.extend({
  key: z.string().regex(KV_KEY, '1–255 of A-Z a-z 0-9 . _ : / -, without a leading, trailing or double /'),
});
const TTL_MAX = 31_536_000;
const putBody = z.strictObject({
  value: z.unknown(),
  ttlSeconds: z.number().int('must be an integer').min(1, 'at least 1').max(TTL_MAX, `at most ${TTL_MAX} (a year)`).optional(),
}).refine((b) => b.value !== undefined, { path: ['value'], message: 'required (any JSON, null included)' })
  .refine((b) => !holdsNul(b.value), { path: ['value'], message: 'strings and keys must not contain NUL characters' });
const listQuery = z.strictObject({
  prefix: storable.max(255).optional(),
  after: storable.max(255).optional(),
  limit: count(1, 1_000, 100),
});

const when = z.string().nullable();
const entrySchema = z.object({ namespace: z.string(), key: z.string(), value: z.unknown(), createdAt: z.string(), updatedAt: z.string(), expiresAt: when });
const listItemSchema = z.object({ key: z.string(), updatedAt: z.string(), expiresAt: when, sizeBytes: z.number().int() });

const present = (namespace: string, e: KvEntry) => ({
  namespace, key: e.key, value: e.value, createdAt: e.createdAt.toISOString(), updatedAt: e.updatedAt.toISOString(), expiresAt: e.expiresAt?.toISOString() ?? null,
});

/** The store's refusals in this API's words: a value over its size is 413, a full namespace 409. */
function refused(err: unknown): never {
  if (err instanceof KvRefusal && err.reason === 'too_large') throw new BodyTooLarge(KV_MAX_VALUE_BYTES, err.message);
  if (err instanceof KvRefusal && err.reason === 'quota') throw conflict(err.message);
  throw err;
}

/**
 * The key-value store of a namespace: the rows the `kv.*` steps of its executions use. Writes here
 * are audited (`kv.set`, `kv.deleted`: never the value); steps' writes are logged in their execution.
 */
export function kvRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/kv/{namespace}', roles: READ_ROLES, params: namespaceParams, query: listQuery,
      summary: 'List the keys of a namespace',
      description: 'By key (byte order); `after=<the last key of the previous page>`; expired keys are left out.',
      responses: { 200: { description: 'Keys, without their values', schema: listItemSchema.array() }, 404: 'Namespace not found' },
      async handler({ principal, params, query }) {
        const project = await visibleNamespace(s, principal, params.namespace);
        const keys = await s.kv.list(project.repositoryIdentifier, query);
        return { body: keys.map((k) => ({ key: k.key, updatedAt: k.updatedAt.toISOString(), expiresAt: k.expiresAt?.toISOString() ?? null, sizeBytes: k.sizeBytes })) };
      },
    }),
    route({
      method: 'get', path: '/kv/{namespace}/{*key}', roles: READ_ROLES, params: keyParams,
      summary: 'Get a value', responses: { 200: { description: 'The entry', schema: entrySchema }, 404: 'Namespace or key not found (an expired key is absent)' },
      async handler({ principal, params }) {
        const project = await visibleNamespace(s, principal, params.namespace);
        const entry = await s.kv.get(project.repositoryIdentifier, params.key);
        if (!entry) throw notFound(`No key ${params.key} in namespace ${params.namespace}`);
        return { body: present(params.namespace, entry) };
      },
    }),
    route({
      method: 'put', path: '/kv/{namespace}/{*key}', roles: EDIT_ROLES, params: keyParams, body: putBody,
      summary: 'Set a value',
      description: '`value` is any JSON (at most 64 KiB); `ttlSeconds` 1–31,536,000 sets an expiry, and a PUT without it clears one.',
      responses: {
        200: { description: 'Replaced', schema: entrySchema }, 201: { description: 'Created', schema: entrySchema }, 404: 'Namespace not found',
        409: 'The namespace holds 10,000 keys already', 413: 'The value is over 64 KiB',
      },
      async handler({ principal, params, body, ctx }) {
        const project = await visibleNamespace(s, principal, params.namespace);
        const { entry, created } = await s.kv.set(project.repositoryIdentifier, params.key, body.value, body.ttlSeconds).catch(refused);
        await s.audit.record(actorOf(principal), 'kv.set', 'kv', `${params.namespace}/${params.key}`, { namespace: params.namespace, key: params.key, created, ttlSeconds: body.ttlSeconds ?? null });
        if (created) ctx.set('Location', `/api/v1/kv/${params.namespace}/${params.key}`);
        return { status: created ? 201 : 200, body: present(params.namespace, entry) };
      },
    }),
    route({
      method: 'delete', path: '/kv/{namespace}/{*key}', roles: EDIT_ROLES, params: keyParams,
      summary: 'Delete a key', responses: { 204: 'Deleted', 404: 'Namespace or key not found' },
      async handler({ principal, params }) {
        const project = await visibleNamespace(s, principal, params.namespace);
        if (!(await s.kv.delete(project.repositoryIdentifier, params.key))) throw notFound(`No key ${params.key} in namespace ${params.namespace}`);
        await s.audit.record(actorOf(principal), 'kv.deleted', 'kv', `${params.namespace}/${params.key}`, { namespace: params.namespace, key: params.key });
        return { status: 204 };
      },
    }),
  ];
}
