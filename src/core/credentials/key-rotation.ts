import type { CredentialStore } from './credential-store.js';
import { CredentialUnavailable, type Keyring } from './keyring.js';

export interface RotationResult {
  /** Rows sealed anew under the current key. */
  reencrypted: number;
  /** Rows already under the current key. */
  current: number;
  /** Rows under keys this process does not have, by key id (they fail on use). */
  absentKeys: Record<string, number>;
  /** Rows that did not decrypt under their key. */
  unreadable: number;
}

/**
 * Seals every row not under the current key anew with it, in batches; rows of keys not configured
 * (or that do not decrypt) are counted and left as they are. Values never leave this function.
 */
export async function reencryptCredentials(store: CredentialStore, keyring: Keyring, batch = 100): Promise<RotationResult> {
  const result: RotationResult = { reencrypted: 0, current: 0, absentKeys: {}, unreadable: 0 };
  const skipKeys = new Set<string>();
  const skipIds = new Set<string>();
  for (;;) {
    const rows = (await store.notUnder(keyring.currentId, batch + skipIds.size, [...skipKeys])).filter((r) => !skipIds.has(r.id));
    if (!rows.length) break;
    for (const row of rows.slice(0, batch)) {
      if (!keyring.has(row.sealed.keyId)) {
        skipKeys.add(row.sealed.keyId);
        continue;
      }
      try {
        const value = keyring.open(row.id, row.name, row.sealed);
        if (await store.reseal(row.id, row.sealed, keyring.seal(row.id, value))) result.reencrypted++;
      } catch (err) {
        if (!(err instanceof CredentialUnavailable)) throw err;
        skipIds.add(row.id);
        result.unreadable++;
      }
    }
  }
  const counts = await store.countByKey();
  result.current = counts[keyring.currentId] ?? 0;
  for (const [keyId, n] of Object.entries(counts)) if (!keyring.has(keyId)) result.absentKeys[keyId] = n;
  return result;
}
