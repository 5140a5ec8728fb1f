import pg from 'pg';
import { createProject, eventually, startRun, startTestServer, type TestServer } from '../support/server.js';

// A cancel locks its runs from the top while an executor's flush locks a child and then the parent
// it wakes. PostgreSQL breaks such a deadlock by aborting one side: a cancel it aborts runs again
// rather than answering 500 (seen under load in CI: a cancel of a run whose child had just been approved).
let server: TestServer;
let db: pg.Pool;

beforeAll(async () => {
  server = await startTestServer();
  db = new pg.Pool({ connectionString: server.services.config.databaseUrl, max: 2 });
  await createProject(server, 'acme/app', { owners: ['owner@acme.io'], members: ['dev@acme.io'] });
});
afterAll(async () => {
  await db?.end();
  await server?.stop();
});

test('a cancel that PostgreSQL aborts to break a deadlock runs again and cancels every run', async () => {
  const ids = [await startRun(server, 'gated-log'), await startRun(server, 'gated-log')];
  await eventually(async () => ((await db.query(`select count(*)::int as n from approvals where run_id = any($1::uuid[]) and status = 'pending'`, [ids])).rows[0].n === 2 ? true : undefined));
  // The cancel locks its runs in id order: the other side takes the later one first, then asks for the earlier.
  const [earlier, later] = [...ids].sort();
  const other = await db.connect();
  try {
    await other.query('begin');
    await other.query(`update runs set updated_at = now() where id = $1`, [later]);
    const cancel = server.services.store.cancelRuns(ids, 'cancelled by the test');
    // Once the cancel holds the earlier run and waits for the later one, close the cycle.
    await eventually(async () => ((await db.query(`select count(*)::int as n from pg_locks where not granted and locktype = 'transactionid'`)).rows[0].n > 0 ? true : undefined));
    await other.query(`update runs set updated_at = now() where id = $1`, [earlier]);
    await other.query('commit');
    expect((await cancel).sort()).toEqual([earlier, later]);
  } finally {
    other.release();
  }
  const { rows } = await db.query(`select status from runs where id = any($1::uuid[])`, [ids]);
  expect(rows.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
});
