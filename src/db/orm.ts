import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from './entities/index.js';
import { Migration20261122000000 } from './migrations/Migration20261122000000.js';
import { Migration20261122010000 } from './migrations/Migration20261122010000.js';
import { Migration20261122020000 } from './migrations/Migration20261122020000.js';
import { Migration20261122030000 } from './migrations/Migration20261122030000.js';
import { Migration20261122040000 } from './migrations/Migration20261122040000.js';
import { Migration20261122050000 } from './migrations/Migration20261122050000.js';
import { Migration20261122060000 } from './migrations/Migration20261122060000.js';
import { Migration20261129000000 } from './migrations/Migration20261129000000.js';
import { Migration20261129010000 } from './migrations/Migration20261129010000.js';
import { Migration20261129020000 } from './migrations/Migration20261129020000.js';
import { Migration20261129030000 } from './migrations/Migration20261129030000.js';
import { Migration20261129050000 } from './migrations/Migration20261129050000.js';
import { Migration20261129060000 } from './migrations/Migration20261129060000.js';
import { Migration20261129070000 } from './migrations/Migration20261129070000.js';
import { Migration20261129080000 } from './migrations/Migration20261129080000.js';
import { Migration20261129090000 } from './migrations/Migration20261129090000.js';
import { Migration20261129100000 } from './migrations/Migration20261129100000.js';
import { Migration20261129110000 } from './migrations/Migration20261129110000.js';
import { Migration20261130200000 } from './migrations/Migration20261130200000.js';
import { Migration20261130210000 } from './migrations/Migration20261130210000.js';
import { Migration20261130220000 } from './migrations/Migration20261130220000.js';
import { Migration20261130230000 } from './migrations/Migration20261130230000.js';
import { Migration20261130240000 } from './migrations/Migration20261130240000.js';
import { Migration20261130250000 } from './migrations/Migration20261130250000.js';
import { Migration20261130260000 } from './migrations/Migration20261130260000.js';
import { Migration20261130270000 } from './migrations/Migration20261130270000.js';
import { Migration20261130280000 } from './migrations/Migration20261130280000.js';
import { Migration20261130290000 } from './migrations/Migration20261130290000.js';
import { Migration20261130300000 } from './migrations/Migration20261130300000.js';
import { Migration20261130310000 } from './migrations/Migration20261130310000.js';

/** Migrations are listed here, not discovered on disk, so the same list works from src/ and dist/. */
const migrationsList = [
  { name: 'Migration20261122000000', class: Migration20261122000000 },
  { name: 'Migration20261122010000', class: Migration20261122010000 },
  { name: 'Migration20261122020000', class: Migration20261122020000 },
  { name: 'Migration20261122030000', class: Migration20261122030000 },
  { name: 'Migration20261122040000', class: Migration20261122040000 },
  { name: 'Migration20261122050000', class: Migration20261122050000 },
  { name: 'Migration20261122060000', class: Migration20261122060000 },
  { name: 'Migration20261129000000', class: Migration20261129000000 },
  { name: 'Migration20261129010000', class: Migration20261129010000 },
  { name: 'Migration20261129020000', class: Migration20261129020000 },
  { name: 'Migration20261129030000', class: Migration20261129030000 },
  { name: 'Migration20261129050000', class: Migration20261129050000 },
  { name: 'Migration20261129060000', class: Migration20261129060000 },
  { name: 'Migration20261129070000', class: Migration20261129070000 },
  { name: 'Migration20261129080000', class: Migration20261129080000 },
  { name: 'Migration20261129090000', class: Migration20261129090000 },
  { name: 'Migration20261129100000', class: Migration20261129100000 },
  { name: 'Migration20261129110000', class: Migration20261129110000 },
  { name: 'Migration20261130200000', class: Migration20261130200000 },
  { name: 'Migration20261130210000', class: Migration20261130210000 },
  { name: 'Migration20261130220000', class: Migration20261130220000 },
  { name: 'Migration20261130230000', class: Migration20261130230000 },
  { name: 'Migration20261130240000', class: Migration20261130240000 },
  { name: 'Migration20261130250000', class: Migration20261130250000 },
  { name: 'Migration20261130260000', class: Migration20261130260000 },
  { name: 'Migration20261130270000', class: Migration20261130270000 },
  { name: 'Migration20261130280000', class: Migration20261130280000 },
  { name: 'Migration20261130290000', class: Migration20261130290000 },
  { name: 'Migration20261130300000', class: Migration20261130300000 },
  { name: 'Migration20261130310000', class: Migration20261130310000 },
];

export async function createOrm(clientUrl: string, poolMax = 20): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl,
    entities,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    // Fail fast when the database is away: requests answer 503 instead of queueing for a minute.
    pool: { min: 0, max: poolMax, acquireTimeoutMillis: 5_000 },
    driverOptions: { connection: { connectionTimeoutMillis: 3_000 } },
    debug: false,
    allowGlobalContext: false,
  });
}

/** Applies committed migrations; concurrent starts of several replicas serialise on an advisory lock. */
export async function migrate(orm: MikroORM, url: string): Promise<void> {
  const { default: pg } = await import('pg');
  // A session lock needs one dedicated connection, not a pooled one.
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock(7431001)');
    await orm.getMigrator().up();
  } finally {
    await lock.end();
  }
}

/** Creates the database named in the URL when it does not exist yet (first start on a fresh server). */
export async function ensureDatabase(url: string): Promise<void> {
  const { default: pg } = await import('pg');
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (!rowCount) await client.query(`create database "${name.replace(/"/g, '""')}"`);
  } catch (err) {
    // Another replica may have created it between our check and create.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}
