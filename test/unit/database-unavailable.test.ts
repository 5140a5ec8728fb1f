import { databaseUnavailable } from '../../src/executor/run-work.js';
import { StepFailure } from '../../src/engine/step-failure.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

test('an outage of Flowgate\'s database is recognised, directly or wrapped, and nothing else is', () => {
  expect(databaseUnavailable(withCode('57P03', 'the database system is shutting down'))).toBe(true);
  expect(databaseUnavailable(withCode('57P01'))).toBe(true);
  expect(databaseUnavailable(withCode('08006'))).toBe(true);
  expect(databaseUnavailable(withCode('ECONNREFUSED'))).toBe(true);
  expect(databaseUnavailable(new Error('wrapped', { cause: withCode('57P03') }))).toBe(true);
  expect(databaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  // A restarting server's Unix socket is briefly gone; any other missing file is not an outage.
  expect(databaseUnavailable(withCode('ENOENT', 'connect ENOENT /tmp/run/pg/.s.PGSQL.36261'))).toBe(true);
  expect(databaseUnavailable(withCode('ENOENT', "ENOENT: no such file or directory, open '/x'"))).toBe(false);
  // A step's own failure, a constraint violation, a bug: the step's outcome, not an outage.
  expect(databaseUnavailable(new StepFailure('HTTP 503: busy', true))).toBe(false);
  expect(databaseUnavailable(withCode('23505', 'duplicate key'))).toBe(false);
  expect(databaseUnavailable(new TypeError('x is undefined'))).toBe(false);
  expect(databaseUnavailable(undefined)).toBe(false);
});
