import { templateExpressions } from '../expressions/templates.js';
import type { CredentialStore } from './credential-store.js';
import { CredentialUnavailable, type Keyring } from './keyring.js';

export type CredentialSource = 'env' | 'global' | 'namespace';

const REFERENCE = /\bcredentials\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\])/g;

/** The credential names a step's templates read (`credentials.NAME`, `credentials["NAME"]`). */
export function credentialNames(value: unknown): string[] {
  const names = new Set<string>();
  for (const e of templateExpressions(value)) for (const m of e.matchAll(REFERENCE)) names.add(m[1] ?? m[2]);
  return [...names];
}

/**
 * The credentials a step runs with, decrypted when it runs and only those its templates name:
 * `FLOWGATE_CREDENTIAL_<NAME>` first, then a global credential, then one of the run's project.
 * The env values are all included as before (they are redacted from whatever the step keeps).
 */
export class CredentialResolver {
  constructor(
    private readonly env: Record<string, string>,
    private readonly store: CredentialStore,
    private readonly keyring: Keyring | undefined,
    private readonly resolved: (source: CredentialSource) => void,
  ) {}

  async forStep(repositoryIdentifier: string, stepInput: unknown): Promise<Record<string, string>> {
    const names = credentialNames(stepInput);
    for (const n of names) if (n in this.env) this.resolved('env');
    const wanted = names.filter((n) => !(n in this.env));
    if (!wanted.length) return this.env;
    const rows = await this.store.sealedFor(repositoryIdentifier, wanted);
    const missing = wanted.find((n) => !rows.some((r) => r.name === n));
    if (missing) throw new CredentialUnavailable(`credential ${missing} not found`);
    if (!this.keyring) throw new CredentialUnavailable(`credential ${rows[0].name} is stored, but FLOWGATE_ENCRYPTION_KEY is not set: it cannot be decrypted`);
    const out = { ...this.env };
    for (const name of wanted) {
      // A global wins over the project's (a project cannot take a global's name; this keeps the order if one exists anyway).
      const row = rows.find((r) => r.name === name && r.repositoryIdentifier === null) ?? rows.find((r) => r.name === name)!;
      out[name] = this.keyring.open(row.id, name, row.sealed);
      this.resolved(row.repositoryIdentifier === null ? 'global' : 'namespace');
    }
    return out;
  }
}
