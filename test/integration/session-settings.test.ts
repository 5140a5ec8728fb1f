import pg from 'pg';
import { withSessionSetting } from '../../src/db/session-settings.js';
import { withIdleTransactionTimeout } from '../../src/engine/dbos-engine.js';
import { freshDatabaseUrl } from '../support/database.js';

// Settings that travel in a connection URL are applied by the server at connection start (no
// query racing the first borrower's): DBOS's idle-transaction limit, the executor's plan mode.
test('the URL carries the settings, and the server applies them to the connection', async () => {
  const base = await freshDatabaseUrl('session-settings');
  const client = new pg.Client({ connectionString: withSessionSetting(withIdleTransactionTimeout(base), 'plan_cache_mode', 'force_generic_plan') });
  await client.connect();
  try {
    expect((await client.query('show idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout).toBe('1min');
    expect((await client.query('show plan_cache_mode')).rows[0].plan_cache_mode).toBe('force_generic_plan');
  } finally {
    await client.end();
  }
});

test('other options are kept; a URL that sets the name itself is left alone', () => {
  const kept = new URL(withIdleTransactionTimeout('postgres://u:p@%2Ftmp%2Fpg:5432/app_dbos?options=-c%20statement_timeout%3D5000&sslmode=disable'));
  expect(kept.searchParams.get('options')).toBe('-c statement_timeout=5000 -c idle_in_transaction_session_timeout=60000');
  expect(kept.searchParams.get('sslmode')).toBe('disable');
  expect(kept.host).toBe('%2Ftmp%2Fpg:5432');
  const own = 'postgres://u:p@db:5432/app_dbos?options=-c%20idle_in_transaction_session_timeout%3D5000';
  expect(withIdleTransactionTimeout(own)).toBe(own);
  const mode = 'postgres://u:p@db:5432/flowgate?options=-c%20plan_cache_mode%3Dauto';
  expect(withSessionSetting(mode, 'plan_cache_mode', 'force_generic_plan')).toBe(mode);
});
