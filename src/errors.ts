/** Stable error codes; each REST dialect maps them once to its own envelope. */
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  /** Readable and well-formed, but its content is wrong (a flow document's YAML, inputs, a cron): 422. */
  | 'invalid_content'
  | 'authentication_required'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'engine_unavailable'
  | 'service_unavailable'
  | 'internal_error';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  invalid_content: 422,
  authentication_required: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  engine_unavailable: 503,
  service_unavailable: 503,
  internal_error: 500,
};

/** One problem with one input field: `field` is a dotted path such as `payload.username`. */
export interface FieldProblem {
  field: string;
  message: string;
  /** Where the field came from: body, query, path or header. */
  location?: 'body' | 'query' | 'path' | 'header';
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: FieldProblem[] = [],
    /** Extra fields for the response body, e.g. the current state on a 409. */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = STATUS[code];
  }
}

export const badRequest = (message: string, details: FieldProblem[] = []) => new AppError('bad_request', message, details);
export const validationFailed = (details: FieldProblem[]) =>
  new AppError('validation_failed', details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
export const invalidContent = (message: string, extra?: Record<string, unknown>) => new AppError('invalid_content', message, [], extra);
export const notFound = (message: string) => new AppError('not_found', message);
export const forbidden = (message: string) => new AppError('forbidden', message);
export const conflict = (message: string, extra?: Record<string, unknown>) => new AppError('conflict', message, [], extra);
/** Too many of something at once (the answer carries `Retry-After`). */
export const rateLimited = (message: string) => new AppError('rate_limited', message);
export const unauthenticated = (message: string) => new AppError('authentication_required', message);
export const engineUnavailable = (message = 'Flow engine unavailable') => new AppError('engine_unavailable', message);

/**
 * Errors from the database driver that mean "the database cannot be reached right now"
 * become 503 instead of 500: the caller may retry.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string }; message?: string } | null;
  // A refused socket is the database's only when the database driver says so (top-level code);
  // a `fetch` to some other service fails with it as its cause and must not read as an outage.
  const sqlState = ['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001'];
  return (
    (e?.code !== undefined && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', ...sqlState].includes(e.code)) ||
    (e?.cause?.code !== undefined && sqlState.includes(e.cause.code)) ||
    /Connection terminated|terminating connection|timeout exceeded when trying to connect|Client has encountered a connection error|database system is (shutting down|starting up)|Transaction query already complete|Knex: Timeout acquiring a connection|connect ECONNREFUSED|connect ENOENT \S*\.s\.PGSQL\./i.test(String(e?.message ?? ''))
  );
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isDatabaseUnavailable(err)) return new AppError('service_unavailable', 'Database unavailable, try again shortly');
  return new AppError('internal_error', 'Internal server error');
}
