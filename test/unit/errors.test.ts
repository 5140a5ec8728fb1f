import {
  AppError,
  badRequest,
  conflict,
  engineUnavailable,
  forbidden,
  isDatabaseUnavailable,
  notFound,
  toAppError,
  unauthenticated,
  validationFailed,
  type ErrorCode,
} from '../../src/errors.js';

describe('AppError', () => {
  test.each<[ErrorCode, number]>([
    ['bad_request', 400],
    ['validation_failed', 400],
    ['authentication_required', 401],
    ['forbidden', 403],
    ['not_found', 404],
    ['conflict', 409],
    ['engine_unavailable', 503],
    ['service_unavailable', 503],
    ['internal_error', 500],
  ])('%s has status %d', (code, status) => {
    const e = new AppError(code, 'msg');
    expect(e.status).toBe(status);
    expect(e.code).toBe(code);
    expect(e.message).toBe('msg');
    expect(e.name).toBe('AppError');
    expect(e.details).toEqual([]);
    expect(e).toBeInstanceOf(Error);
  });

  test('keeps details', () => {
    const e = new AppError('bad_request', 'x', [{ field: 'payload.a', message: 'bad', location: 'body' }]);
    expect(e.details).toEqual([{ field: 'payload.a', message: 'bad', location: 'body' }]);
  });
});

describe('helpers', () => {
  test('each helper makes the right code and status', () => {
    expect(badRequest('b')).toMatchObject({ code: 'bad_request', status: 400, message: 'b' });
    expect(notFound('n')).toMatchObject({ code: 'not_found', status: 404, message: 'n' });
    expect(forbidden('f')).toMatchObject({ code: 'forbidden', status: 403, message: 'f' });
    expect(conflict('c')).toMatchObject({ code: 'conflict', status: 409, message: 'c' });
    expect(unauthenticated('u')).toMatchObject({ code: 'authentication_required', status: 401, message: 'u' });
    expect(engineUnavailable()).toMatchObject({ code: 'engine_unavailable', status: 503, message: 'Flow engine unavailable' });
    expect(engineUnavailable('down')).toMatchObject({ message: 'down' });
  });

  test('badRequest keeps details', () => {
    expect(badRequest('b', [{ field: 'q', message: 'm' }]).details).toEqual([{ field: 'q', message: 'm' }]);
  });

  test('validationFailed joins its details into the message', () => {
    const e = validationFailed([
      { field: 'payload.a', message: 'required' },
      { field: 'query.limit', message: 'must be a number', location: 'query' },
    ]);
    expect(e.code).toBe('validation_failed');
    expect(e.status).toBe(400);
    expect(e.message).toBe('payload.a: required; query.limit: must be a number');
    expect(e.details).toHaveLength(2);
  });
});

describe('toAppError', () => {
  test('an AppError is returned as is', () => {
    const e = conflict('taken');
    expect(toAppError(e)).toBe(e);
  });

  test('an unknown error becomes internal_error without leaking its message', () => {
    const e = toAppError(new Error('secret database password in here'));
    expect(e.code).toBe('internal_error');
    expect(e.status).toBe(500);
    expect(e.message).toBe('Internal server error');
  });

  test.each([['a string'], [null], [undefined], [42], [{ some: 'object' }]])('a thrown %p becomes internal_error', (thrown) => {
    const e = toAppError(thrown);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe('internal_error');
  });

  test('connection refused becomes service_unavailable', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const e = toAppError(err);
    expect(e.code).toBe('service_unavailable');
    expect(e.status).toBe(503);
    expect(e.message).not.toContain('127.0.0.1');
  });

  test.each(['ECONNRESET', '57P01', '57P03', '08006', '08001'])('database error code %s becomes service_unavailable', (code) => {
    expect(toAppError(Object.assign(new Error('x'), { code })).code).toBe('service_unavailable');
  });

  test('other database error codes are internal errors', () => {
    expect(toAppError(Object.assign(new Error('duplicate key'), { code: '23505' })).code).toBe('internal_error');
  });

  test('connection messages become service_unavailable', () => {
    expect(toAppError(new Error('Connection terminated unexpectedly')).code).toBe('service_unavailable');
    expect(toAppError(new Error('timeout exceeded when trying to connect')).code).toBe('service_unavailable');
  });
});

describe('isDatabaseUnavailable', () => {
  test('true for connection problems, false otherwise', () => {
    expect(isDatabaseUnavailable({ code: 'ECONNREFUSED' })).toBe(true);
    expect(isDatabaseUnavailable(new Error('connection TERMINATED'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('syntax error'))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });

  test('a Unix socket to a stopped database counts; another missing file does not', () => {
    expect(isDatabaseUnavailable(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('connect ENOENT /data/pg/.s.PGSQL.54329'), { code: 'ENOENT' }))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error("ENOENT: no such file or directory, open 'flows/x.yaml'"), { code: 'ENOENT' }))).toBe(false);
  });
});
