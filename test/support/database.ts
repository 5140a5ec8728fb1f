import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A new, empty database on the test server for one test file (or one server process).
 * The engine's system database is created by DBOS next to it (`<name>_dbos`).
 */
export async function freshDatabaseUrl(label: string): Promise<string> {
  const base = process.env.FLOWGATE_TEST_DATABASE_URL;
  if (!base) throw new Error('FLOWGATE_TEST_DATABASE_URL is not set: run the tests through jest (globalSetup)');
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${process.env.JEST_WORKER_ID ?? '0'}_${randomBytes(4).toString('hex')}`;
  const admin = new URL(base);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}
