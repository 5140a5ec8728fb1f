import type { AppError, ErrorCode } from '../../errors.js';

/** This API's error codes (its contract names a few differently from the core's). */
const CODE: Partial<Record<ErrorCode, string>> = { engine_unavailable: 'service_unavailable' };

/** `{"error": {"code", "message", "details": []}}`; `details` lists field problems. */
export function workflowRunsEnvelope(err: AppError) {
  return { error: { code: CODE[err.code] ?? err.code, message: err.message, details: err.details } };
}

/** Validation failures are 422 here (400 elsewhere); every other code keeps its common status. */
export const workflowRunsStatus = (err: AppError): number => (err.code === 'validation_failed' ? 422 : err.status);
