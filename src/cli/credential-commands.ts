import type { MikroORM } from '@mikro-orm/postgresql';
import { CredentialStore } from '../core/credentials/credential-store.js';
import type { EncryptionKeys } from '../core/credentials/encryption-keys.js';
import { reencryptCredentials } from '../core/credentials/key-rotation.js';
import { Keyring } from '../core/credentials/keyring.js';

/**
 * `credentials rotate-key`: seals every credential not under FLOWGATE_ENCRYPTION_KEY anew with it
 * (those under FLOWGATE_ENCRYPTION_KEYS_PREVIOUS) and prints counts, never values. Exit 1 while
 * rows under keys not configured remain.
 */
export async function rotateKeyCommand(orm: MikroORM, keys: EncryptionKeys): Promise<{ output: string; ok: boolean }> {
  const keyring = new Keyring(keys);
  const r = await reencryptCredentials(new CredentialStore(orm), keyring);
  const lines = [
    `Re-encrypted ${r.reencrypted} credential(s) under key ${keyring.currentId}; ${r.current} now under it.`,
    ...Object.entries(r.absentKeys).map(([id, n]) => `${n} credential(s) under key ${id}, which is not configured: add it to FLOWGATE_ENCRYPTION_KEYS_PREVIOUS and run again, or store them anew.`),
    ...(r.unreadable ? [`${r.unreadable} credential(s) do not decrypt under their key (damaged): store them anew.`] : []),
  ];
  return { output: `${lines.join('\n')}\n`, ok: !Object.keys(r.absentKeys).length && !r.unreadable };
}
