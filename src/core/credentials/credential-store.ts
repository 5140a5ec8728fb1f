import type { MikroORM } from '@mikro-orm/postgresql';
import { sql, transaction, type Query } from '../../db/sql.js';
import type { Sealed } from './keyring.js';

export const CREDENTIAL_TYPES = ['secret', 'token', 'password', 'url', 'certificate'] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

/** A credential without its value: all any route shows. */
export interface Credential {
  id: string;
  name: string;
  /** Null for a global credential. */
  repositoryIdentifier: string | null;
  namespace: string | null;
  type: CredentialType;
  description: string;
  keyId: string;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string;
  updatedBy: string;
}

export interface SealedCredential extends Credential {
  sealed: Sealed;
}

interface Row {
  id: string; name: string; repository_identifier: string | null; namespace: string | null; type: CredentialType; description: string; key_id: string;
  created_at: string | Date; updated_at: string | Date; created_by: string; updated_by: string;
}
interface SealedRow extends Row { nonce: Buffer; ciphertext: Buffer; tag: Buffer }

const COLUMNS = `c.id, c.name, c.repository_identifier, p.namespace, c.type, c.description, c.key_id, c.created_at, c.updated_at, c.created_by, c.updated_by`;
const FROM = 'from credentials c left join projects p on p.repository_identifier = c.repository_identifier';

const toCredential = (r: Row): Credential => ({
  id: r.id, name: r.name, repositoryIdentifier: r.repository_identifier, namespace: r.namespace, type: r.type, description: r.description, keyId: r.key_id,
  createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at), createdBy: r.created_by, updatedBy: r.updated_by,
});
const toSealed = (r: SealedRow): SealedCredential => ({ ...toCredential(r), sealed: { keyId: r.key_id, nonce: r.nonce, ciphertext: r.ciphertext, tag: r.tag } });

/** The `credentials` table; values only ever as sealed bytes. */
export class CredentialStore {
  constructor(private readonly orm: MikroORM) {}

  async find(id: string): Promise<Credential | null> {
    const [row] = await sql<Row>(this.orm, `select ${COLUMNS} ${FROM} where c.id = ?::uuid`, [id]);
    return row ? toCredential(row) : null;
  }

  /** Globals and the credentials of the projects given (null: every project); `project`: that project's only. */
  async list(filter: { projects: readonly string[] | null; project?: string }): Promise<Credential[]> {
    const rows = filter.project
      ? await sql<Row>(this.orm, `select ${COLUMNS} ${FROM} where c.repository_identifier = ? order by c.name`, [filter.project])
      : await sql<Row>(this.orm, `select ${COLUMNS} ${FROM} where c.repository_identifier is null or ?::text[] is null or c.repository_identifier = any(?::text[])
          order by c.repository_identifier nulls first, c.name`, [filter.projects, filter.projects]);
    return rows.map(toCredential);
  }

  /** The rows a step may resolve `names` from: the globals and those of its project. */
  async sealedFor(repositoryIdentifier: string, names: string[]): Promise<SealedCredential[]> {
    const rows = await sql<SealedRow>(this.orm,
      `select ${COLUMNS}, c.nonce, c.ciphertext, c.tag ${FROM} where c.name = any(?::text[]) and (c.repository_identifier is null or c.repository_identifier = ?)`,
      [names, repositoryIdentifier]);
    return rows.map(toSealed);
  }

  /** The names a run of this project resolves from the store: the global ones and the project's. */
  async namesFor(repositoryIdentifier: string): Promise<string[]> {
    const rows = await sql<{ name: string }>(this.orm, 'select name from credentials where repository_identifier is null or repository_identifier = ?', [repositoryIdentifier]);
    return rows.map((r) => r.name);
  }

  /** Every stored name, whatever its project (start-up names those an env variable shadows). */
  async allNames(): Promise<{ name: string; namespace: string | null }[]> {
    return sql<{ name: string; namespace: string | null }>(this.orm, `select c.name, p.namespace ${FROM} order by c.name`);
  }

  /**
   * Runs `fn` holding a lock on `name` for the transaction: what other rows of that name exist is
   * decided and written by one writer at a time (a global and a project's may not share it).
   */
  async underNameLock<T>(name: string, fn: (tx: CredentialTx) => Promise<T>): Promise<T> {
    return transaction(this.orm, async (q) => {
      await q('select pg_advisory_xact_lock(hashtext(?))', [`flowgate:credential:${name}`]);
      return fn(new CredentialTx(q));
    });
  }

  async update(id: string, change: { type?: CredentialType; description?: string; sealed?: Sealed; by: string }): Promise<Credential | null> {
    const s = change.sealed;
    const [row] = await sql<{ id: string }>(this.orm,
      `update credentials set type = coalesce(?, type), description = coalesce(?, description),
         key_id = coalesce(?, key_id), nonce = coalesce(?, nonce), ciphertext = coalesce(?, ciphertext), tag = coalesce(?, tag),
         updated_at = now(), updated_by = ? where id = ?::uuid returning id`,
      [change.type ?? null, change.description ?? null, s?.keyId ?? null, s?.nonce ?? null, s?.ciphertext ?? null, s?.tag ?? null, change.by, id]);
    return row ? this.find(id) : null;
  }

  async delete(id: string): Promise<boolean> {
    return (await sql(this.orm, 'delete from credentials where id = ?::uuid returning id', [id])).length > 0;
  }

  /** A batch of rows sealed under another key than `keyId`, oldest first. */
  async notUnder(keyId: string, limit: number, skip: readonly string[]): Promise<SealedCredential[]> {
    const rows = await sql<SealedRow>(this.orm,
      `select ${COLUMNS}, c.nonce, c.ciphertext, c.tag ${FROM} where c.key_id <> ? and not (c.key_id = any(?::text[])) order by c.id limit ?`,
      [keyId, [...skip], limit]);
    return rows.map(toSealed);
  }

  /** Replaces a row's sealed value if it is still the one read (a write meanwhile wins). */
  async reseal(id: string, from: Sealed, to: Sealed): Promise<boolean> {
    const rows = await sql(this.orm,
      'update credentials set key_id = ?, nonce = ?, ciphertext = ?, tag = ? where id = ?::uuid and key_id = ? and nonce = ? returning id',
      [to.keyId, to.nonce, to.ciphertext, to.tag, id, from.keyId, from.nonce]);
    return rows.length > 0;
  }

  /** How many rows are sealed under each key id. */
  async countByKey(): Promise<Record<string, number>> {
    const rows = await sql<{ key_id: string; n: string }>(this.orm, 'select key_id, count(*) as n from credentials group by key_id');
    return Object.fromEntries(rows.map((r) => [r.key_id, Number(r.n)]));
  }
}

/** The reads and the insert of a create, inside its name lock. */
export class CredentialTx {
  constructor(private readonly q: Query) {}

  /** Where else `name` is stored: globally, and in which projects (by namespace). */
  async holders(name: string): Promise<{ global: boolean; projects: string[] }> {
    const rows = await this.q<{ repository_identifier: string | null }>('select repository_identifier from credentials where name = ?', [name]);
    return { global: rows.some((r) => r.repository_identifier === null), projects: rows.map((r) => r.repository_identifier).filter((r): r is string => r !== null) };
  }

  async insert(c: { id: string; name: string; repositoryIdentifier: string | null; type: CredentialType; description: string; sealed: Sealed; by: string }): Promise<void> {
    await this.q(
      `insert into credentials (id, name, repository_identifier, type, description, key_id, nonce, ciphertext, tag, created_by, updated_by)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [c.id, c.name, c.repositoryIdentifier, c.type, c.description, c.sealed.keyId, c.sealed.nonce, c.sealed.ciphertext, c.sealed.tag, c.by, c.by]);
  }
}
