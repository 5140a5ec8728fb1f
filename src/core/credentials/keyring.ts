import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey, EncryptionKeys } from './encryption-keys.js';

/** A credential value as stored: the key it was sealed under, nonce, ciphertext and GCM tag. */
export interface Sealed {
  keyId: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** A stored credential a step needs cannot be used; the message says why and never holds a value. */
export class CredentialUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialUnavailable';
  }
}

/** A row sealed under a key this process does not have; the message names the key id only. */
export class CredentialKeyMissing extends CredentialUnavailable {
  constructor(readonly credentialName: string, readonly keyId: string) {
    super(`credential ${credentialName} is encrypted under key ${keyId}, which is neither FLOWGATE_ENCRYPTION_KEY nor in FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: set that key again, or store the credential anew`);
  }
}

/** A row that does not decrypt under its key (altered, or moved to another id). */
export class CredentialUnreadable extends CredentialUnavailable {
  constructor(credentialName: string) {
    super(`credential ${credentialName} cannot be decrypted (its stored value is damaged or was altered): store it anew`);
  }
}

/** What binds a ciphertext to its row: a value copied into another row does not decrypt there. */
const aadOf = (id: string) => Buffer.from(`flowgate:credential:${id}`, 'utf8');

/** AES-256-GCM under the current key, a random 96-bit nonce per write; older keys decrypt only. */
export class Keyring {
  private readonly byId: Map<string, EncryptionKey>;

  constructor(private readonly keys: EncryptionKeys) {
    this.byId = new Map([keys.current, ...keys.previous].map((k) => [k.id, k]));
  }

  get currentId(): string {
    return this.keys.current.id;
  }

  has(keyId: string): boolean {
    return this.byId.has(keyId);
  }

  seal(id: string, value: string): Sealed {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.current.bytes, nonce);
    cipher.setAAD(aadOf(id));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return { keyId: this.keys.current.id, nonce, ciphertext, tag: cipher.getAuthTag() };
  }

  /** The value of row `id` (`name` only for messages). */
  open(id: string, name: string, s: Sealed): string {
    const key = this.byId.get(s.keyId);
    if (!key) throw new CredentialKeyMissing(name, s.keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, s.nonce);
      decipher.setAAD(aadOf(id));
      decipher.setAuthTag(s.tag);
      return Buffer.concat([decipher.update(s.ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new CredentialUnreadable(name);
    }
  }
}
