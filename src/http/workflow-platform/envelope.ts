import type { AppError } from '../../errors.js';
import { BodyTooLarge } from '../body.js';

/** A body (1 MiB) or a flow's YAML (256 KiB) over its limit is 413 here. */
export const platformStatus = (err: AppError): number => (err instanceof BodyTooLarge ? 413 : err.status);

/**
 * The workflow platform's errors: `{error, code, details?}` plus the extra fields of a 409. Its
 * contract says `bad_request` for a body or query that fails its schema (400) and
 * `validation_failed` for content that is wrong (422: YAML, inputs, cron, namespace).
 */
export function platformEnvelope(err: AppError) {
  const code = err instanceof BodyTooLarge ? 'payload_too_large' : err.code === 'validation_failed' ? 'bad_request' : err.code === 'invalid_content' ? 'validation_failed' : err.code;
  return { error: err.message, code, ...(err.details.length ? { details: err.details } : {}), ...err.extra };
}
