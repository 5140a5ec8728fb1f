import pg from 'pg';
import { withIdleTransactionTimeout } from '../../src/engine/dbos-engine.js';
import { freshDatabaseUrl } from '../support/database.js';

// DBOS's system database connections: the idle-transaction limit travels in the URL, applied by
// the server at connection start (no query racing the first borrower's).
test('the URL carries the limit, and the server applies it to the connection', async () => {
  const base = await freshDatabaseUrl('dbos-connection');
  const client = new pg.Client({ connectionString: withIdleTransactionTimeout(base) });
  await client.connect();
  try {
    expect((await client.query('show idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout).toBe('1min');
  } finally {
    await client.end();
  }
});

test('other options are kept; a URL that sets the limit itself is left alone', () => {
  const kept = new URL(withIdleTransactionTimeout('postgres://u:p@%2Ftmp%2Fpg:5432/app_dbos?options=-c%20statement_timeout%3D5000&sslmode=disable'));
  expect(kept.searchParams.get('options')).toBe('-c statement_timeout=5000 -c idle_in_transaction_session_timeout=60000');
  expect(kept.searchParams.get('sslmode')).toBe('disable');
  expect(kept.host).toBe('%2Ftmp%2Fpg:5432');
  const own = 'postgres://u:p@db:5432/app_dbos?options=-c%20idle_in_transaction_session_timeout%3D5000';
  expect(withIdleTransactionTimeout(own)).toBe(own);
});
