import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, systemDatabaseUrlFor } from '../../src/config.js';

/** Runs loadConfig expecting a ConfigError and returns its problems. */
function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

describe('loadConfig defaults', () => {
  const config = loadConfig({});

  test('port, host and embedded PostgreSQL port', () => {
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.embeddedPgPort).toBe(54329);
  });

  test('data and manifests folders are resolved to absolute paths', () => {
    expect(path.isAbsolute(config.dataDir)).toBe(true);
    expect(config.dataDir).toBe(path.resolve(process.cwd(), '.flowgate'));
    expect(path.isAbsolute(config.manifestsDir)).toBe(true);
    expect(config.manifestsDir).toBe(path.resolve(process.cwd(), 'manifests/flows'));
  });

  test('executor id defaults to flowgate-<hostname>; every process executes unless told otherwise', () => {
    expect(config.executorId).toBe(`flowgate-${os.hostname()}`);
    expect(config.executes).toBe(true);
    expect(loadConfig({ FLOWGATE_EXECUTOR: 'off' }).executes).toBe(false);
  });

  test('public URL follows the port; optional settings are undefined', () => {
    expect(config.publicUrl).toBe('http://127.0.0.1:8080');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.systemDatabaseUrl).toBeUndefined();
    expect(config.adminToken).toBeUndefined();
    expect(config.webhookSecret).toBeUndefined();
  });

  test('log level, shutdown timeout and credentials', () => {
    expect(config.logLevel).toBe('info');
    expect(config.shutdownTimeoutMs).toBe(10000);
    expect(config.credentials).toEqual({});
  });
});

describe('loadConfig with values', () => {
  test('reads every variable', () => {
    const c = loadConfig({
      PORT: '9090',
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgres://u:p@db:5432/app',
      FLOWGATE_SYSTEM_DATABASE_URL: 'postgresql://u:p@db:5432/sys',
      FLOWGATE_DATA_DIR: '/var/lib/flowgate',
      FLOWGATE_EMBEDDED_PG_PORT: '6000',
      FLOWGATE_ADMIN_TOKEN: 'a'.repeat(16),
      FLOWGATE_EXECUTOR_ID: 'node-1.a_b',
      FLOWGATE_MANIFESTS_DIR: 'custom/flows',
      FLOWGATE_PUBLIC_URL: 'https://flowgate.example.com',
      FLOWGATE_WEBHOOK_SECRET: 's'.repeat(20),
      FLOWGATE_SHUTDOWN_TIMEOUT_MS: '2500',
      LOG_LEVEL: 'debug',
    });
    expect(c.port).toBe(9090);
    expect(c.host).toBe('127.0.0.1');
    expect(c.databaseUrl).toBe('postgres://u:p@db:5432/app');
    expect(c.systemDatabaseUrl).toBe('postgresql://u:p@db:5432/sys');
    expect(c.dataDir).toBe('/var/lib/flowgate');
    expect(c.embeddedPgPort).toBe(6000);
    expect(c.adminToken).toBe('a'.repeat(16));
    expect(c.executorId).toBe('node-1.a_b');
    expect(c.manifestsDir).toBe(path.resolve('custom/flows'));
    expect(c.publicUrl).toBe('https://flowgate.example.com');
    expect(c.webhookSecret).toBe('s'.repeat(20));
    expect(c.shutdownTimeoutMs).toBe(2500);
    expect(c.logLevel).toBe('debug');
  });

  test('a relative data dir becomes absolute', () => {
    const c = loadConfig({ FLOWGATE_DATA_DIR: 'some/dir' });
    expect(c.dataDir).toBe(path.join(process.cwd(), 'some/dir'));
  });

  test('PORT 0 is allowed (free port) and the default public URL uses it', () => {
    const c = loadConfig({ PORT: '0' });
    expect(c.port).toBe(0);
    expect(c.publicUrl).toBe('http://127.0.0.1:0');
  });

  test('PORT is a number, not a string', () => {
    expect(typeof loadConfig({ PORT: '3000' }).port).toBe('number');
  });
});

describe('loadConfig problems', () => {
  test('PORT, LOG_LEVEL and DATABASE_URL problems are all reported together, by name', () => {
    const problems = problemsOf({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(problems).toHaveLength(3);
    expect(problems.some((p) => p.startsWith('PORT: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('LOG_LEVEL: '))).toBe(true);
    expect(problems).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL');
  });

  test('the error message lists every problem', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(Error);
    const e = error as ConfigError;
    expect(e.name).toBe('ConfigError');
    expect(e.message).toMatch(/^Invalid configuration:\n/);
    expect(e.message).toContain('  - PORT: ');
    expect(e.message).toContain('  - LOG_LEVEL: ');
    expect(e.message).toContain('  - DATABASE_URL: ');
  });

  test.each([
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['FLOWGATE_EMBEDDED_PG_PORT', '0'],
    ['FLOWGATE_EMBEDDED_PG_PORT', '65536'],
    ['FLOWGATE_SHUTDOWN_TIMEOUT_MS', '-1'],
    ['FLOWGATE_SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['FLOWGATE_ADMIN_TOKEN', 'short'],
    ['FLOWGATE_WEBHOOK_SECRET', '123456789012345'],
    ['FLOWGATE_EXECUTOR_ID', 'has space'],
    ['FLOWGATE_EXECUTOR_ID', 'a/b'],
    ['FLOWGATE_EXECUTOR', 'maybe'],
    ['FLOWGATE_PUBLIC_URL', 'not a url'],
    ['FLOWGATE_SYSTEM_DATABASE_URL', 'http://db/x'],
    ['DATABASE_URL', 'postgres:/missing-slash'],
    ['LOG_LEVEL', 'INFO'],
  ])('%s=%j is rejected by name', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(`${name}: `)).toBe(true);
  });

  test('an empty value means unset: the default applies (PORT= in a .env file is not port 0)', () => {
    const c = loadConfig({ PORT: '', HOST: ' ', FLOWGATE_DATA_DIR: '', FLOWGATE_SHUTDOWN_TIMEOUT_MS: '' });
    expect(c.port).toBe(8080);
    expect(c.host).toBe('0.0.0.0');
    expect(c.dataDir.endsWith('.flowgate')).toBe(true);
    expect(c.shutdownTimeoutMs).toBe(10000);
  });

  test('secrets of 16 characters are accepted', () => {
    const c = loadConfig({ FLOWGATE_ADMIN_TOKEN: '1234567890123456', FLOWGATE_WEBHOOK_SECRET: 'abcdefghijklmnop' });
    expect(c.adminToken).toBe('1234567890123456');
    expect(c.webhookSecret).toBe('abcdefghijklmnop');
  });

  test('many problems at once are each named once', () => {
    const problems = problemsOf({
      LOG_LEVEL: 'loud',
      FLOWGATE_ADMIN_TOKEN: 'x',
      FLOWGATE_EXECUTOR_ID: 'a b',
      FLOWGATE_PUBLIC_URL: 'nope',
      FLOWGATE_WEBHOOK_SECRET: 'x',
      FLOWGATE_SHUTDOWN_TIMEOUT_MS: '-5',
    });
    const names = problems.map((p) => p.split(':')[0]).sort();
    expect(names).toEqual([
      'FLOWGATE_ADMIN_TOKEN',
      'FLOWGATE_EXECUTOR_ID',
      'FLOWGATE_PUBLIC_URL',
      'FLOWGATE_SHUTDOWN_TIMEOUT_MS',
      'FLOWGATE_WEBHOOK_SECRET',
      'LOG_LEVEL',
    ]);
  });

  test('unrelated variables are ignored', () => {
    expect(() => loadConfig({ HOME: '/root', PATH: '/bin', SOMETHING_ELSE: 'x' })).not.toThrow();
  });
});

describe('credentials', () => {
  test('are collected from FLOWGATE_CREDENTIAL_* variables, without the prefix', () => {
    const c = loadConfig({
      FLOWGATE_CREDENTIAL_GITHUB_TOKEN: 'ghp_123',
      FLOWGATE_CREDENTIAL_slack: 'xoxb',
      FLOWGATE_CREDENTIAL_UNSET: undefined,
      FLOWGATE_CREDENTIALS_X: 'not a credential',
      CREDENTIAL_OTHER: 'nope',
      FLOWGATE_ADMIN_TOKEN: 'a'.repeat(16),
    });
    expect(c.credentials).toEqual({ GITHUB_TOKEN: 'ghp_123', slack: 'xoxb' });
  });

  test('keep their values verbatim, including empty strings', () => {
    const c = loadConfig({ FLOWGATE_CREDENTIAL_A: '  spaced  ', FLOWGATE_CREDENTIAL_B: '' });
    expect(c.credentials).toEqual({ A: '  spaced  ', B: '' });
  });
});

describe('systemDatabaseUrlFor', () => {
  test('appends _dbos to the database name', () => {
    expect(systemDatabaseUrlFor('postgres://u:p@db:5432/app')).toBe('postgres://u:p@db:5432/app_dbos');
  });

  test('keeps the query string', () => {
    expect(systemDatabaseUrlFor('postgresql://db/app?sslmode=require')).toBe('postgresql://db/app_dbos?sslmode=require');
  });

  test('uses flowgate_dbos when the URL names no database', () => {
    expect(systemDatabaseUrlFor('postgres://u:p@db:5432')).toBe('postgres://u:p@db:5432/flowgate_dbos');
    expect(systemDatabaseUrlFor('postgres://db/')).toBe('postgres://db/flowgate_dbos');
  });

  test('keeps credentials, host and port', () => {
    const url = new URL(systemDatabaseUrlFor('postgres://alice:s3cret@10.0.0.5:6543/main'));
    expect(url.username).toBe('alice');
    expect(url.password).toBe('s3cret');
    expect(url.hostname).toBe('10.0.0.5');
    expect(url.port).toBe('6543');
    expect(url.pathname).toBe('/main_dbos');
  });
});
