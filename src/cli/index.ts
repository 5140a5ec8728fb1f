#!/usr/bin/env node
import { ConfigError, loadConfig } from '../config.js';
import { AppError } from '../errors.js';
import { parseCommand, USAGE, UsageError, type Command } from './args.js';

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

  if (command.kind === 'logs') {
    // An API client: no server configuration, no database.
    const { logsCommand } = await import('./logs-command.js');
    return logsCommand(command, { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }

  const config = loadConfig(process.env);
  // Loaded only when needed: usage errors and help answer without the ORM's start-up cost.
  const [{ openDatabase }, { TokenCommands }] = await Promise.all([import('./database.js'), import('./token-commands.js')]);
  const db = await openDatabase(config);
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
