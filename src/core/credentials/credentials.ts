import type { MikroORM } from '@mikro-orm/postgresql';
import type { AuditLog } from '../audit/audit-log.js';
import { CredentialResolver, type CredentialSource } from './credential-resolver.js';
import { CredentialService } from './credential-service.js';
import { CredentialStore } from './credential-store.js';
import type { EncryptionKeys } from './encryption-keys.js';
import { Keyring } from './keyring.js';

/** The credential store's parts, over one table and one keyring (none without FLOWGATE_ENCRYPTION_KEY). */
export function credentialServices(
  orm: MikroORM,
  settings: { credentials: Record<string, string>; encryption?: EncryptionKeys },
  audit: AuditLog,
  resolved: (source: CredentialSource) => void,
) {
  const store = new CredentialStore(orm);
  const keyring = settings.encryption ? new Keyring(settings.encryption) : undefined;
  return {
    service: new CredentialService(store, keyring, new Set(Object.keys(settings.credentials)), audit),
    resolver: new CredentialResolver(settings.credentials, store, keyring, resolved),
  };
}
