import type { AppError } from '../../errors.js';

/** Flowgate's own API (and the workflow platform dialect): `{error: message}`, with field details. */
export function apiEnvelope(err: AppError) {
  return { error: err.message, code: err.code, ...(err.details.length ? { details: err.details } : {}), ...err.extra };
}
