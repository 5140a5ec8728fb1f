import pg from 'pg';
import { refreshStaleStatistics } from '../../src/db/planner-statistics.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';

// The executor analyzes a hot table whose changes since its last ANALYZE are at least half its
// rows (and 1,000), so a new database under load does not run for a minute on plans made for
// empty tables.

let server: TestServer;
let pool: pg.Pool;

beforeAll(async () => {
  // The server's own executor looks every 5 s too: the test asks on a table the server never writes.
  server = await startTestServer();
  pool = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  // Autovacuum off on it: only the code under test analyzes it.
  await pool.query('create table stats_probe (id bigint primary key, note text) with (autovacuum_enabled = false)');
});
afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

const analyzedAt = async () => (await pool.query(`select last_analyze from pg_stat_user_tables where relname = 'stats_probe'`)).rows[0]?.last_analyze as Date | null;
// The statistics collector publishes a backend's counts once it is idle: read afresh until they show.
const modifiedSinceAnalyze = () => eventually(async () => {
  const { rows } = await pool.query(`select n_mod_since_analyze::int as n from pg_stat_user_tables where relname = 'stats_probe'`);
  return rows[0]?.n > 0 ? rows[0].n as number : undefined;
}, 10_000, 'modifications counted');

test('a table that doubled since its last ANALYZE is analyzed; one that grew less is left to autovacuum', async () => {
  // Under the floor of 1,000 changes: left alone.
  await pool.query(`insert into stats_probe select g, 'x' from generate_series(1, 500) g`);
  await modifiedSinceAnalyze();
  expect(await refreshStaleStatistics(pool, ['stats_probe'])).toEqual([]);
  expect(await analyzedAt()).toBeNull();

  // 2,000 rows, all new since no ANALYZE: analyzed, and the planner knows the size.
  await pool.query(`insert into stats_probe select g, 'x' from generate_series(501, 2000) g`);
  await eventually(async () => ((await modifiedSinceAnalyze()) >= 2000 ? true : undefined), 10_000, 'all 2,000 counted');
  expect(await refreshStaleStatistics(pool, ['stats_probe'])).toEqual(['stats_probe']);
  expect(await analyzedAt()).toBeInstanceOf(Date);
  const { rows: [{ reltuples }] } = await pool.query(`select reltuples from pg_class where relname = 'stats_probe'`);
  expect(reltuples).toBe(2000);

  // 1,500 more is less than half of 3,500: autovacuum's business, not this.
  await pool.query(`insert into stats_probe select g, 'x' from generate_series(2001, 3500) g`);
  await eventually(async () => ((await modifiedSinceAnalyze()) >= 1500 ? true : undefined), 10_000, 'the 1,500 counted');
  expect(await refreshStaleStatistics(pool, ['stats_probe'])).toEqual([]);
});

test('a table locked by someone else is skipped at once, not waited for', async () => {
  // Doubled since its last ANALYZE (2,000 rows then, 13,500 now).
  await pool.query(`insert into stats_probe select g, 'y' from generate_series(10001, 20000) g`);
  await eventually(async () => ((await modifiedSinceAnalyze()) >= 11500 ? true : undefined), 10_000, 'the new rows counted');
  const holder = await pool.connect();
  try {
    await holder.query('begin');
    await holder.query('lock table stats_probe in share update exclusive mode');
    // Waiting for the lock would hang here until the rollback below: it gives up after 100 ms instead.
    expect(await refreshStaleStatistics(pool, ['stats_probe'])).toEqual([]);
  } finally {
    await holder.query('rollback');
    holder.release();
  }
  expect(await refreshStaleStatistics(pool, ['stats_probe'])).toEqual(['stats_probe']);
});
