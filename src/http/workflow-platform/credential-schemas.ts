import { z } from 'zod';
import { CREDENTIAL_TYPES } from '../../core/credentials/credential-store.js';

/** Values over this size (UTF-8) are refused. */
export const MAX_CREDENTIAL_BYTES = 64 * 1024;

const value = z.string().min(1, 'required: at least 1 byte')
  .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_CREDENTIAL_BYTES, `at most ${MAX_CREDENTIAL_BYTES} bytes`);
const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'letters, digits and _, starting with a letter or _ (at most 128)');
const namespace = z.string().min(1).max(63);
const type = z.enum(CREDENTIAL_TYPES);
const description = z.string().max(1000);

/** `POST /credentials`: no namespace is a global credential. */
export const createCredentialBody = z.strictObject({ name, value, namespace: namespace.optional(), type: type.default('secret'), description: description.default('') });

/** `PUT /credentials/{id}`: absent fields keep their value; `name` and `namespace` may be repeated, not changed. */
export const updateCredentialBody = z.strictObject({ value: value.optional(), type: type.optional(), description: description.optional(), name: name.optional(), namespace: namespace.nullable().optional() });

export const credentialParams = z.strictObject({ id: z.string().min(1).max(200) });
export const listCredentialsQuery = z.object({ namespace: namespace.optional() });

/** A credential as every route shows it: never its value, in any form. */
export const credentialSchema = z.object({
  id: z.string(), name: z.string(), namespace: z.string().nullable(), type, description: z.string(),
  createdAt: z.string(), updatedAt: z.string(), createdBy: z.string(), updatedBy: z.string(),
});
