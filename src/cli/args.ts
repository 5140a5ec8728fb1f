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
  credentials rotate-key
      Re-encrypt stored credentials under FLOWGATE_ENCRYPTION_KEY (those under a key in
      FLOWGATE_ENCRYPTION_KEYS_PREVIOUS); prints counts, never values.
  run <flowType> --repo <owner/repo> [key=value ...] [--wait] [--json]
      Start a flow on a project; values are converted to the flow's parameter types
      (lists: a,b or a JSON list). With --wait, follow it until it has finished
      (exit 0 if it completed, 1 otherwise).
  status <runId> [--json]
      Show a run: status, steps, the approval it waits for, result or error.
  approve <runId|approvalId> [--reason <text>]
      Approve as the person of FLOWGATE_TOKEN (a token with --email).
  reject <runId|approvalId> --reason <text>
      Reject as the person of FLOWGATE_TOKEN.
  cancel <runId>
      Cancel a run (and its children).
  logs <runId> [--follow]
      Print a run's log lines (child runs' lines marked {<taskType> <id>}); with --follow,
      keep printing new lines until the run and its children have finished.
  help
      Show this help.

The token and credentials commands use the server's database: DATABASE_URL, or else the embedded PostgreSQL
in FLOWGATE_DATA_DIR (default .flowgate) on FLOWGATE_EMBEDDED_PG_PORT.
The other commands use the server's API: FLOWGATE_URL (default http://127.0.0.1:8080)
with the API token in FLOWGATE_TOKEN.
`;

export type Command =
  | { kind: 'help' }
  | { kind: 'token.create'; input: NewToken }
  | { kind: 'token.list' }
  | { kind: 'token.revoke'; id: string }
  | { kind: 'credentials.rotate-key' }
  | { kind: 'logs'; runId: string; follow: boolean }
  | { kind: 'run'; flowType: string; repo: string; params: Record<string, string>; wait: boolean; json: boolean }
  | { kind: 'status'; runId: string; json: boolean }
  | { kind: 'approve' | 'reject'; id: string; reason?: string }
  | { kind: 'cancel'; runId: string };

/** The commands that talk to the server's HTTP API (the rest use its database). */
export type ApiCommand = Extract<Command, { kind: 'logs' | 'run' | 'status' | 'approve' | 'reject' | 'cancel' }>;
export const isApiCommand = (c: Command): c is ApiCommand => ['logs', 'run', 'status', 'approve', 'reject', 'cancel'].includes(c.kind);

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
const runOptions = {
  repo: { type: 'string' }, wait: { type: 'boolean', short: 'w' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;
const statusOptions = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const decideOptions = { reason: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/** A parameter name as flows declare them; `id` and `repositoryIdentifier` are the run's own. */
const PARAM_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const RESERVED_KEYS: Record<string, string> = { id: 'the flow type is the first argument', repositoryIdentifier: 'use --repo' };

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
  if (group === 'run') return parseRun(argv.slice(1));
  if (group === 'status') {
    const { values, positionals } = parse('status', argv.slice(1), statusOptions);
    if (values.help) return { kind: 'help' };
    return { kind: 'status', runId: oneId('status', 'run id', positionals), json: values.json ?? false };
  }
  if (group === 'approve' || group === 'reject') {
    const { values, positionals } = parse(group, argv.slice(1), decideOptions);
    if (values.help) return { kind: 'help' };
    const id = oneId(group, 'run or approval id', positionals);
    const reason = values.reason?.trim();
    if (values.reason !== undefined && !reason) throw new UsageError('--reason: must not be empty');
    if (group === 'reject' && !reason) throw new UsageError('--reason: required: say why the request is rejected');
    if (reason && reason.length > 2000) throw new UsageError('--reason: at most 2000 characters');
    return { kind: group, id, ...(reason ? { reason } : {}) };
  }
  if (group === 'cancel') {
    const { values, positionals } = parse('cancel', argv.slice(1), helpOnly);
    if (values.help) return { kind: 'help' };
    return { kind: 'cancel', runId: oneId('cancel', 'run id', positionals) };
  }
  if (group === 'credentials') {
    if (action !== 'rotate-key') throw new UsageError(action === undefined ? '"credentials" needs a subcommand: rotate-key' : `unknown subcommand "credentials ${action}"`);
    const { values, positionals } = parse('credentials rotate-key', rest, helpOnly);
    if (values.help) return { kind: 'help' };
    noPositionals('credentials rotate-key', positionals);
    return { kind: 'credentials.rotate-key' };
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

/** `run <flowType> --repo <owner/repo> key=value … [--wait] [--json]` */
function parseRun(args: string[]): Command {
  const { values, positionals } = parse('run', args, runOptions);
  if (values.help) return { kind: 'help' };
  const [flowType, ...pairs] = positionals;
  if (!flowType || flowType.includes('=')) throw new UsageError('"run" needs the flow type first: run <flowType> --repo <owner/repo> [key=value ...]');
  if (values.repo === undefined) throw new UsageError('--repo: required: the project to run on (owner/repo)');
  const repo = repositoryIdentifier.safeParse(values.repo);
  if (!repo.success) throw new UsageError(`--repo: "${values.repo}" ${repo.error.issues[0].message}`);
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, Math.max(eq, 0));
    if (eq < 1 || !PARAM_KEY.test(key)) throw new UsageError(`"${pair}": parameters are key=value (a letter or _ first)`);
    if (RESERVED_KEYS[key]) throw new UsageError(`"${pair}": ${key} is not a parameter: ${RESERVED_KEYS[key]}`);
    if (key in params) throw new UsageError(`"${pair}": ${key} is given twice`);
    params[key] = pair.slice(eq + 1);
  }
  return { kind: 'run', flowType, repo: repo.data, params, wait: values.wait ?? false, json: values.json ?? false };
}

function oneId(command: string, what: string, positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError(`"${command}" takes exactly one ${what}`);
  const id = positionals[0].trim();
  if (!id || id.length > 200) throw new UsageError(`"${command}": "${positionals[0]}" is not a ${what}`);
  return id;
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
