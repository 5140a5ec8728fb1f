import { STATUS_CODES } from 'node:http';
import type { AppError } from '../../errors.js';

/**
 * The sfp server (NestJS) error shape: `{statusCode, message, error}`. Like Nest's validation
 * pipe, field problems come as a list of messages, each naming its field.
 */
export function sfpEnvelope(err: AppError) {
  return {
    statusCode: err.status,
    message: err.details.length ? err.details.map((d) => `${d.field}: ${d.message}`) : err.message,
    error: STATUS_CODES[err.status] ?? 'Error',
    ...(err.details.length ? { summary: err.message } : {}),
    ...err.extra,
  };
}
