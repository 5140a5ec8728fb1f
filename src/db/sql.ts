import type { MikroORM } from '@mikro-orm/postgresql';

interface PgConnection {
  query(text: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<{ rows: unknown[] }>;
}
interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<unknown>;
}

const numbered = new Map<string, string>();

/**
 * Runs one statement on a connection of the ORM's own pool, without the ORM's query building
 * (which costs several times the round trip itself: measured 670 µs of CPU for a `findOne`
 * against 110 µs here). For the hot paths only: a run's start, its steps, its log, tokens.
 * Placeholders are `?`, as in the ORM's raw queries; never inside a transaction of the ORM.
 * `prepared`: a name under which each connection keeps the statement parsed (and, once PostgreSQL
 * finds a generic plan as good, planned), for statements run on every click or notice: parsing
 * and planning cost PostgreSQL more than executing them. One name, one text.
 */
export async function sql<T = Record<string, unknown>>(orm: MikroORM, text: string, params: unknown[] = [], prepared?: string): Promise<T[]> {
  let query = numbered.get(text);
  if (!query) {
    let n = 0;
    query = text.replace(/\?/g, () => `$${++n}`);
    numbered.set(text, query);
  }
  const client = orm.em.getConnection().getKnex().client as unknown as KnexClient;
  const connection = await client.acquireConnection();
  try {
    const result = prepared ? await connection.query({ name: prepared, text: query, values: params }) : await connection.query(query, params);
    return result.rows as T[];
  } finally {
    await client.releaseConnection(connection);
  }
}

/** A constant list of words as SQL literals (`'a','b'`), for status sets written into statements. */
export const sqlList = (xs: readonly string[]) => xs.map((s) => `'${s.replace(/'/g, "''")}'`).join(',');

/** Escapes `%`, `_` and `\` for a LIKE pattern that should match the text literally. */
export const escapeLike = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);

export type Query = <T = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>;

/** PostgreSQL's "do it again": a deadlock it broke by aborting this transaction, a serialization conflict. */
const TRY_AGAIN = new Set(['40P01', '40001']);

/**
 * Runs `fn` in one transaction on a connection of the ORM's pool, with `?` placeholders as `sql`
 * has; rolled back when `fn` throws. For the few writes that must read, decide and write under
 * one row lock (run control). With `retries`, a transaction PostgreSQL aborted to break a deadlock
 * (or a serialization conflict) runs again from the start: only for an `fn` that does nothing but
 * its queries.
 */
export async function transaction<T>(orm: MikroORM, fn: (q: Query) => Promise<T>, options: { retries?: number } = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await transactionOnce(orm, fn);
    } catch (err) {
      if (attempt >= (options.retries ?? 0) || !TRY_AGAIN.has((err as { code?: string }).code ?? '')) throw err;
    }
  }
}

async function transactionOnce<T>(orm: MikroORM, fn: (q: Query) => Promise<T>): Promise<T> {
  const client = orm.em.getConnection().getKnex().client as unknown as KnexClient;
  const connection = await client.acquireConnection();
  const q: Query = async <R>(text: string, params: unknown[] = []) => {
    let n = 0;
    return (await connection.query(text.replace(/\?/g, () => `$${++n}`), params)).rows as R[];
  };
  try {
    await connection.query('begin', []);
    try {
      const out = await fn(q);
      await connection.query('commit', []);
      return out;
    } catch (err) {
      await connection.query('rollback', []).catch(() => undefined);
      throw err;
    }
  } finally {
    await client.releaseConnection(connection);
  }
}

const snake = (p: string) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** Column names are few and read on every row: each is converted once. */
const camels = new Map<string, string>();
const camel = (c: string) => {
  let prop = camels.get(c);
  if (prop === undefined) camels.set(c, (prop = c.replace(/_([a-z])/g, (_, x: string) => x.toUpperCase())));
  return prop;
};

/** The columns of an entity's table (its properties, snake_cased as the ORM names them), less those left out. */
export function columnsOf(schema: { meta: { properties: Record<string, unknown> } }, leaveOut: string[] = []): string {
  return Object.keys(schema.meta.properties).filter((p) => !leaveOut.includes(p)).map(snake).join(', ');
}

/**
 * A row read with `sql` as an instance of its entity (columns camelCased; timestamps, which the
 * ORM's pool hands over as text, made Dates). Not managed by an ORM context: for reading, on hot
 * paths where the ORM's query building costs several times the query.
 */
export function rowTo<T extends object>(schema: { meta: { class: unknown; properties: Record<string, unknown> } }, row: Record<string, unknown>): T {
  const entity = new (schema.meta.class as new () => T)();
  for (const [k, v] of Object.entries(row)) {
    const prop = camel(k);
    const type = (schema.meta.properties[prop] as { type?: string } | undefined)?.type;
    (entity as Record<string, unknown>)[prop] = type === 'datetime' && typeof v === 'string' ? new Date(v) : v;
  }
  return entity;
}
