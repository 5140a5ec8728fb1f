// Runs outside jest's module system, so it uses the built server code (npm test builds first).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgres } from '../../dist/db/embedded-postgres.js';

const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
});

/** One real PostgreSQL for the whole jest run (embedded unless DATABASE_URL is set). */
export default async function globalSetup() {
  if (process.env.DATABASE_URL) {
    process.env.FLOWGATE_TEST_DATABASE_URL = process.env.DATABASE_URL;
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-test-pg-'));
  fs.chmodSync(dir, 0o755);
  const pg = new EmbeddedPostgres(dir, await freePort());
  process.env.FLOWGATE_TEST_DATABASE_URL = await pg.start();
  globalThis.__flowgatePg = { pg, dir };
}
