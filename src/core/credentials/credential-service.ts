import type { Actor, AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import { AppError, conflict } from '../../errors.js';
import type { Credential, CredentialStore, CredentialType } from './credential-store.js';
import type { Keyring } from './keyring.js';
import { reencryptCredentials, type RotationResult } from './key-rotation.js';

/** The answer of every credential route while no key is configured. */
export const storageOff = () => new AppError('service_unavailable',
  'Credential storage is off: set FLOWGATE_ENCRYPTION_KEY (32 bytes as 64 hex characters or base64) to store credentials');

export interface NewCredential {
  name: string;
  value: string;
  type: CredentialType;
  description: string;
  /** The project (and its namespace) it belongs to; null: global. */
  project: { repositoryIdentifier: string; namespace: string } | null;
}

const auditOf = (c: Pick<Credential, 'name' | 'namespace' | 'type'>) => ({ name: c.name, namespace: c.namespace, type: c.type });

/**
 * Credentials as the API writes them: one source per name (an env variable or a global credential
 * reserves its name), the value sealed with the current key and never given back.
 */
export class CredentialService {
  constructor(
    private readonly store: CredentialStore,
    private readonly keyring: Keyring | undefined,
    /** Names set by `FLOWGATE_CREDENTIAL_<NAME>`. */
    private readonly envNames: ReadonlySet<string>,
    private readonly audit: AuditLog,
  ) {}

  /** Whether credentials can be stored (FLOWGATE_ENCRYPTION_KEY is set). */
  get enabled(): boolean {
    return this.keyring !== undefined;
  }

  private ring(): Keyring {
    if (!this.keyring) throw storageOff();
    return this.keyring;
  }

  async find(id: string): Promise<Credential | null> {
    this.ring();
    return this.store.find(id);
  }

  async list(filter: { projects: readonly string[] | null; project?: string }): Promise<Credential[]> {
    this.ring();
    return this.store.list(filter);
  }

  async create(input: NewCredential, actor: Actor): Promise<Credential> {
    const ring = this.ring();
    const { name, project } = input;
    if (this.envNames.has(name)) throw conflict(`${name} is set by the operator (FLOWGATE_CREDENTIAL_${name}): choose another name`);
    const id = newId();
    await this.store.underNameLock(name, async (tx) => {
      const held = await tx.holders(name);
      if (held.global) throw conflict(project ? `${name} is a global credential: choose another name` : `A global credential ${name} exists already`);
      if (project && held.projects.includes(project.repositoryIdentifier)) throw conflict(`A credential ${name} exists already in namespace ${project.namespace}`);
      // A global would take the name from the namespaces that use it (globals are resolved first).
      if (!project && held.projects.length) throw conflict(`${name} is a credential of ${held.projects.length} namespace(s): a global one would shadow it; delete those first or choose another name`);
      await tx.insert({ id, name, repositoryIdentifier: project?.repositoryIdentifier ?? null, type: input.type, description: input.description, sealed: ring.seal(id, input.value), by: actor.name });
    });
    const made = (await this.store.find(id))!;
    await this.audit.record(actor, 'credential.created', 'credential', id, auditOf(made));
    return made;
  }

  /** Absent fields keep their value; a new value is sealed with the current key. */
  async update(c: Credential, change: { value?: string; type?: CredentialType; description?: string }, actor: Actor): Promise<Credential> {
    const ring = this.ring();
    const updated = await this.store.update(c.id, {
      type: change.type, description: change.description, sealed: change.value === undefined ? undefined : ring.seal(c.id, change.value), by: actor.name,
    });
    if (!updated) throw new AppError('not_found', `No credential ${c.id}`);
    const changed = (['value', 'type', 'description'] as const).filter((k) => change[k] !== undefined);
    await this.audit.record(actor, 'credential.updated', 'credential', c.id, { ...auditOf(updated), changed });
    return updated;
  }

  async delete(c: Credential, actor: Actor): Promise<void> {
    this.ring();
    if (!(await this.store.delete(c.id))) throw new AppError('not_found', `No credential ${c.id}`);
    await this.audit.record(actor, 'credential.deleted', 'credential', c.id, auditOf(c));
  }

  /** Seals rows under previous keys anew with the current one (the sweep; `credentials rotate-key`). */
  async reencrypt(): Promise<RotationResult | undefined> {
    return this.keyring ? reencryptCredentials(this.store, this.keyring) : undefined;
  }

  /** The names a run of this project could resolve now (env, global, the project's): validation warns of others. */
  async knownNames(repositoryIdentifier: string): Promise<Set<string>> {
    return new Set([...this.envNames, ...await this.store.namesFor(repositoryIdentifier)]);
  }

  /** Stored credentials an env variable of the same name now hides (start-up names them). */
  async shadowedByEnv(): Promise<string[]> {
    if (!this.envNames.size) return [];
    return (await this.store.allNames()).filter((c) => this.envNames.has(c.name)).map((c) => (c.namespace ? `${c.namespace}/${c.name}` : c.name));
  }
}
