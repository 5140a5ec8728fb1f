import { randomBytes } from 'node:crypto';
import { loadConfig, ConfigError } from '../../src/config.js';
import { credentialNames } from '../../src/core/credentials/credential-resolver.js';
import { keyIdOf, parseKey, readEncryptionKeys } from '../../src/core/credentials/encryption-keys.js';
import { CredentialKeyMissing, CredentialUnreadable, Keyring } from '../../src/core/credentials/keyring.js';

const bytes = randomBytes(32);

describe('encryption keys', () => {
  test('32 bytes as 64 hex characters or base64 (standard or URL-safe); key id = first 8 hex of SHA-256', () => {
    const id = keyIdOf(bytes);
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(parseKey(bytes.toString('hex'))).toEqual({ id, bytes });
    expect(parseKey(bytes.toString('base64'))).toEqual({ id, bytes });
    expect(parseKey(bytes.toString('base64url'))).toEqual({ id, bytes });
    expect(parseKey(` ${bytes.toString('hex').toUpperCase()}\n`)).toEqual({ id, bytes });
    for (const bad of ['', 'secret', bytes.toString('hex').slice(2), randomBytes(16).toString('base64'), randomBytes(33).toString('base64'), `${bytes.toString('hex')}00`]) expect(parseKey(bad)).toBeNull();
  });

  test('a bad key stops start-up naming the setting, never the key', () => {
    const bad = 'not-a-key-0123456789';
    let err: unknown;
    try {
      loadConfig({ FLOWGATE_ENCRYPTION_KEY: bad, FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: `${bytes.toString('hex')},also-bad` });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.stringMatching(/^FLOWGATE_ENCRYPTION_KEY: must be 32 bytes written as 64 hex characters or as base64/),
      expect.stringMatching(/^FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: entry 2 must be 32 bytes/),
    ]);
    expect((err as Error).message).not.toContain(bad);
    expect((err as Error).message).not.toContain('also-bad');
    expect(() => loadConfig({ FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: bytes.toString('hex') })).toThrow(/FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: set FLOWGATE_ENCRYPTION_KEY/);
  });

  test('unset (or blank): storage off; set: current and distinct previous keys', () => {
    expect(loadConfig({}).encryption).toBeUndefined();
    expect(loadConfig({ FLOWGATE_ENCRYPTION_KEY: ' ' }).encryption).toBeUndefined();
    const old = randomBytes(32);
    const keys = readEncryptionKeys({ FLOWGATE_ENCRYPTION_KEY: bytes.toString('hex'), FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: ` ${old.toString('base64')}, ${old.toString('hex')},${bytes.toString('hex')}` });
    expect(keys.problems).toEqual([]);
    expect(keys.keys).toEqual({ current: { id: keyIdOf(bytes), bytes }, previous: [{ id: keyIdOf(old), bytes: old }] });
  });
});

describe('keyring', () => {
  const current = { id: keyIdOf(bytes), bytes };
  const old = (() => { const b = randomBytes(32); return { id: keyIdOf(b), bytes: b }; })();

  test('AES-256-GCM with a fresh 96-bit nonce per write, bound to the row id', () => {
    const ring = new Keyring({ current, previous: [] });
    const a = ring.seal('id-1', 'hunter2-value');
    const b = ring.seal('id-1', 'hunter2-value');
    expect(a.keyId).toBe(current.id);
    expect(a.nonce).toHaveLength(12);
    expect(a.tag).toHaveLength(16);
    expect(a.nonce.equals(b.nonce)).toBe(false);
    expect(a.ciphertext.toString('utf8')).not.toContain('hunter2');
    expect(ring.open('id-1', 'X', a)).toBe('hunter2-value');
    // Moved to another row, or altered: refused, without the value.
    expect(() => ring.open('id-2', 'X', a)).toThrow(CredentialUnreadable);
    expect(() => ring.open('id-1', 'X', { ...a, ciphertext: Buffer.from(a.ciphertext.map((x) => x ^ 1)) })).toThrow(/credential X cannot be decrypted/);
  });

  test('previous keys decrypt; a key not configured fails with a message naming its id', () => {
    const sealed = new Keyring({ current: old, previous: [] }).seal('id-1', 'v4lue');
    expect(new Keyring({ current, previous: [old] }).open('id-1', 'X', sealed)).toBe('v4lue');
    const missing = () => new Keyring({ current, previous: [] }).open('id-1', 'API_TOKEN', sealed);
    expect(missing).toThrow(CredentialKeyMissing);
    expect(missing).toThrow(`credential API_TOKEN is encrypted under key ${old.id}, which is neither FLOWGATE_ENCRYPTION_KEY nor in FLOWGATE_ENCRYPTION_KEYS_PREVIOUS`);
  });
});

test('the credential names a step reads', () => {
  expect(credentialNames({ url: '{{ credentials.API }}/x', headers: { a: 'Bearer {{ credentials["TOKEN"] }}', b: "{{ credentials['T2'] | default('') }}" }, n: 3 }).sort()).toEqual(['API', 'T2', 'TOKEN']);
  expect(credentialNames({ message: 'credentials.NOT_A_TEMPLATE {{ payload.credentials }}' })).toEqual([]);
});
