import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ROLES } from '../db/entities/api-token.js';
import type { NewToken } from '../core/identity/tokens.js';
import { repositoryIdentifier } from '../http/sfp/schemas.js';

export const USAGE = `Usage: flowgate <command> [options]

Commands:
  token create --name <name> --role <${ROLES.join('|')}> [--email <email>] [--projects <owner/repo,org/project/repo>]
      Create an API token and print its secret (shown only once; only its hash is stored).
  token list
      List API tokens: id, name, role, email, projects, created, last used (never secrets).
  token revoke <id>
      Revoke (delete) an API token.
  logs <runId> [--follow]
      Print a run's log lines (child runs' lines marked {<taskType> <id>}); with --follow,
      keep printing new lines until the run and its children have finished.
  help
      Show this help.

The token commands use the server's database: DATABASE_URL, or else the embedded PostgreSQL
in FLOWGATE_DATA_DIR (default .flowgate) on FLOWGATE_EMBEDDED_PG_PORT.
The logs command uses the server's API: FLOWGATE_URL (default http://127.0.0.1:8080)
with the API token in FLOWGATE_TOKEN.
`;

export type Command =
  | { kind: 'help' }
  | { kind: 'token.create'; input: NewToken }
  | { kind: 'token.list' }
  | { kind: 'token.revoke'; id: string }
  | { kind: 'logs'; runId: string; follow: boolean };

/** The command line is wrong: the message names the bad command, flag or value (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const createOptions = {
  name: { type: 'string' },
  role: { type: 'string' },
  email: { type: 'string' },
  projects: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
const helpOnly = { help: { type: 'boolean', short: 'h' } } as const;
const logsOptions = { follow: { type: 'boolean', short: 'f' }, help: { type: 'boolean', short: 'h' } } as const;

const createSchema = z.object({
  name: z.string({ error: 'required' }).trim().min(1, 'required').max(100, 'at most 100 characters'),
  role: z.enum(ROLES, {
    error: (iss) => `${iss.input === undefined ? 'required' : `"${String(iss.input)}" is not a role`}: use one of ${ROLES.join(', ')}`,
  }),
  email: z.email('must be an email address').optional(),
  projects: z.string()
    .transform((v) => v.split(',').map((p) => p.trim()).filter(Boolean))
    .pipe(z.array(repositoryIdentifier).min(1, 'list at least one owner/repo, comma-separated'))
    .optional(),
});

const tokenId = z.uuid('must be a token id (a UUID, as shown by `token list`)');

/** Turns argv (without `node script`) into one command, or throws UsageError. */
export function parseCommand(argv: string[]): Command {
  const [group, action, ...rest] = argv;
  if (group === undefined) throw new UsageError('no command given');
  if (group === 'help' || group === '--help' || group === '-h') return { kind: 'help' };
  if (group === 'logs') {
    const { values, positionals } = parse('logs', argv.slice(1), logsOptions);
    if (values.help) return { kind: 'help' };
    if (positionals.length !== 1) throw new UsageError('"logs" takes exactly one run id');
    return { kind: 'logs', runId: positionals[0], follow: values.follow ?? false };
  }
  if (group !== 'token') throw new UsageError(`unknown command "${group}"`);
  if (action === undefined) throw new UsageError('"token" needs a subcommand: create, list or revoke');
  if (action === 'help' || action === '--help' || action === '-h') return { kind: 'help' };

  switch (action) {
    case 'create': {
      const { values, positionals } = parse('token create', rest, createOptions);
      if (values.help) return { kind: 'help' };
      noPositionals('token create', positionals);
      const parsed = createSchema.safeParse(values, { reportInput: true });
      if (!parsed.success) throw new UsageError(parsed.error.issues.map(describeIssue).join('\n'));
      return { kind: 'token.create', input: parsed.data };
    }
    case 'list': {
      const { values, positionals } = parse('token list', rest, helpOnly);
      if (values.help) return { kind: 'help' };
      noPositionals('token list', positionals);
      return { kind: 'token.list' };
    }
    case 'revoke': {
      const { values, positionals } = parse('token revoke', rest, helpOnly);
      if (values.help) return { kind: 'help' };
      if (positionals.length !== 1) throw new UsageError('"token revoke" takes exactly one token id');
      const id = tokenId.safeParse(positionals[0]);
      if (!id.success) throw new UsageError(`token id "${positionals[0]}": ${id.error.issues[0].message}`);
      return { kind: 'token.revoke', id: id.data };
    }
    default:
      throw new UsageError(`unknown subcommand "token ${action}"`);
  }
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

function parse<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as { code?: string; message: string };
    const flag = /'(-[^' ]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${flag} for "${command}"`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(flag && options[flag.replace(/^-+/, '')]?.type === 'boolean'
        ? `${flag} takes no value`
        : `${flag ?? 'an option'} needs a value`);
    }
    throw new UsageError(e.message);
  }
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" for "${command}"`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const [key, index] = issue.path;
  const flag = `--${String(key)}`;
  if (typeof index === 'number') return `${flag}: "${String(issue.input)}" ${issue.message}`;
  return `${flag}: ${issue.message}`;
}
