#!/usr/bin/env node
import { ConfigError } from '../config.js';
import { AppError } from '../errors.js';
import { ApiClient, CliFailure, type CliIo } from './api-client.js';
import { isApiCommand, parseCommand, USAGE, UsageError, type ApiCommand, type Command } from './args.js';

/** Exit codes: 0 done, 1 failed (bad configuration, unknown token, database trouble, API error), 2 misuse. */
async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${prefixed(err.message)}\n${USAGE}`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (isApiCommand(command)) return apiCommand(command);

  // Only the database settings: the doors' settings are the server's business, not the token commands'.
  const { loadDatabaseSettings } = await import('./database-settings.js');
  const settings = loadDatabaseSettings(process.env);
  // Loaded only when needed: usage errors and help answer without the ORM's start-up cost.
  const [{ openDatabase }, { TokenCommands }] = await Promise.all([import('./database.js'), import('./token-commands.js')]);
  if (command.kind === 'credentials.rotate-key') {
    const { readEncryptionKeys } = await import('../core/credentials/encryption-keys.js');
    const { keys, problems } = readEncryptionKeys(process.env);
    if (!keys) throw new ConfigError(problems.length ? problems : ['FLOWGATE_ENCRYPTION_KEY: required: the key to re-encrypt credentials under']);
    const db = await openDatabase(settings);
    try {
      const { rotateKeyCommand } = await import('./credential-commands.js');
      const { output, ok } = await rotateKeyCommand(db.orm, keys);
      process.stdout.write(output);
      return ok ? 0 : 1;
    } finally {
      await db.close();
    }
  }
  const db = await openDatabase(settings);
  try {
    const tokens = new TokenCommands(db.orm);
    const output = command.kind === 'token.create' ? await tokens.create(command.input)
      : command.kind === 'token.list' ? await tokens.list()
      : await tokens.revoke(command.id);
    process.stdout.write(output);
    return 0;
  } finally {
    await db.close();
  }
}

/** An API client: no server configuration, no database. */
async function apiCommand(command: ApiCommand): Promise<number> {
  const io: CliIo = { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };
  try {
    const api = ApiClient.fromEnv(io.env, command.kind);
    if (command.kind === 'logs') return await (await import('./logs-command.js')).logsCommand(command, api, io);
    const flows = await import('./flow-commands.js');
    switch (command.kind) {
      case 'run': return await flows.runCommand(command, api, io);
      case 'status': return await flows.statusCommand(command, api, io);
      case 'approve':
      case 'reject': return await flows.decideCommand(command, api, io);
      case 'cancel': return await flows.cancelCommand(command, api, io);
    }
  } catch (err) {
    if (!(err instanceof CliFailure)) throw err;
    io.err(prefixed(err.message));
    return err.exitCode;
  }
}

/** Every line of an error message starts with `flowgate: `. */
const prefixed = (message: string) => message.split('\n').map((l) => `flowgate: ${l}\n`).join('');

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    const message = err instanceof ConfigError || err instanceof AppError ? err.message : `${(err as Error)?.message ?? err}`;
    process.stderr.write(prefixed(message));
    process.exitCode = 1;
  },
);
