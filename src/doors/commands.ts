import type { FlowDefinition } from '../core/registry/manifest-schema.js';

/** What a person asked for, in any door. */
export type Command =
  | { name: 'run'; flowType: string; params: Record<string, string>; repo?: string }
  | { name: 'status'; runId?: string }
  | { name: RunVerb; runId?: string }
  | { name: 'approvals' }
  | { name: 'approve'; approvalId?: string }
  | { name: 'reject'; reason: string; approvalId?: string }
  | { name: 'login' }
  | { name: 'help' };

/** What a person can do to a run from a thread (besides deciding its approvals). */
export type RunVerb = 'cancel' | 'pause' | 'resume' | 'retry';

/**
 * Like Atlantis' comment parser, parsing yields a result, never an exception: a command, a
 * reply explaining what was wrong, or `ignore` for ordinary text (which can never act).
 */
export type Parsed = { kind: 'command'; command: Command } | { kind: 'reply'; text: string } | { kind: 'ignore' };

export const HELP = [
  'run <flowType> [repo=<owner/repo>] key=value …   start a flow (quote values with spaces: reason="db restore")',
  'status [<runId>]                                show a run',
  'cancel [<runId>]                                cancel a run',
  'pause [<runId>] / resume [<runId>]              pause a run (running steps finish, nothing new starts), resume it',
  'retry [<runId>]                                 retry an ended run: a new run that keeps its completed steps',
  'approvals                                       pending approvals you can decide',
  'approve [<id>] / reject [<id>] <reason>         decide this thread\'s approval (its id when several are pending)',
  'login                                           a one-time link to sign in to the web console (sent privately)',
  'help                                            this text',
].join('\n');

/** The answer to `login` where everyone reading the thread would see the link (an issue, a work item). */
export const signInElsewhere = (publicUrl: string) =>
  `A sign-in link posted here would let anyone who reads this thread in. Ask the Slack bot with \`/flowgate login\` (it answers by direct message), or sign in at ${publicUrl}/console/login with your Flowgate account or an API token.`;

/** Splits on spaces, keeping "quoted values" (and key="quoted values") together. */
export function tokenize(text: string): string[] | { error: string } {
  const tokens: string[] = [];
  let current = '';
  let quote: string | null = null;
  let started = false;
  for (const ch of text.replace(/[\u201c\u201d]/g, '"').replace(/[\u2018\u2019]/g, "'")) {
    if (quote) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      started = true;
    } else if (/\s/.test(ch)) {
      if (started) tokens.push(current);
      current = '';
      started = false;
    } else {
      current += ch;
      started = true;
    }
  }
  if (quote) return { error: `unclosed ${quote} quote` };
  if (started) tokens.push(current);
  return tokens;
}

/** Parses the words after the command name (`/flowgate …` in Slack, `/flowgate …` in a comment). */
export function parseWords(text: string): Parsed {
  const tokens = tokenize(text.trim());
  if (!Array.isArray(tokens)) return { kind: 'reply', text: `Could not read that command: ${tokens.error}.` };
  const [verb, ...rest] = tokens;
  switch ((verb ?? '').toLowerCase()) {
    case '':
    case 'help':
      return { kind: 'command', command: { name: 'help' } };
    case 'run': {
      const [flowType, ...pairs] = rest;
      if (!flowType || flowType.includes('=')) return { kind: 'reply', text: 'Which flow? Usage: run <flowType> key=value …' };
      const params: Record<string, string> = {};
      let repo: string | undefined;
      for (const pair of pairs) {
        const eq = pair.indexOf('=');
        if (eq <= 0) return { kind: 'reply', text: `"${pair}" is not key=value. Usage: run <flowType> key=value …` };
        const key = pair.slice(0, eq);
        const value = pair.slice(eq + 1);
        if (key === 'repo') repo = value;
        else params[key] = value;
      }
      return { kind: 'command', command: { name: 'run', flowType, params, ...(repo ? { repo } : {}) } };
    }
    case 'status':
    case 'cancel':
    case 'pause':
    case 'resume':
    case 'retry':
      if (rest.length > 1) return { kind: 'reply', text: `Usage: ${verb.toLowerCase()} [<runId>]` };
      return { kind: 'command', command: { name: verb.toLowerCase() as 'status' | RunVerb, ...(rest[0] ? { runId: rest[0] } : {}) } };
    case 'approvals':
    case 'login':
      return { kind: 'command', command: { name: verb.toLowerCase() as 'approvals' | 'login' } };
    case 'approve':
      return { kind: 'command', command: { name: 'approve', ...approvalIdOf(rest) } };
    case 'reject': {
      // `reject <approvalId> <reason>` or `reject <reason>`: an id is recognised by its shape.
      const named = approvalIdOf(rest);
      const reason = (named.approvalId ? rest.slice(1) : rest).join(' ');
      return reason ? { kind: 'command', command: { name: 'reject', reason, ...named } } : { kind: 'reply', text: 'Say why: reject [<approvalId>] <reason>' };
    }
    default:
      return { kind: 'reply', text: `Unknown command "${verb}". Commands:\n${HELP}` };
  }
}

/**
 * Commands in an issue, pull request or work-item comment. Only a line that *starts* with
 * `/flowgate`, `/approve`, `/reject`, `/status` or `/cancel` is a command; anything else —
 * quoting, mentioning "/approve" mid-sentence, showing it inside a ``` or ~~~ fenced block — is
 * ordinary discussion and is ignored.
 */
export function parseComment(body: string): Parsed {
  let fence: { char: string; length: number } | null = null;
  for (const raw of body.split(/\r?\n/)) {
    // Fences as CommonMark reads them: up to three spaces of indent; closed by a fence of the
    // same character at least as long, with nothing after it; an unclosed fence runs to the end.
    const f = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(raw);
    if (fence) {
      if (f && f[1][0] === fence.char && f[1].length >= fence.length && !f[2].trim()) fence = null;
      continue;
    }
    if (f && !(f[1][0] === '`' && f[2].includes('`'))) {
      fence = { char: f[1][0], length: f[1].length };
      continue;
    }
    const line = raw.trim();
    if (raw.startsWith('>') || line.startsWith('>')) continue;
    const m = /^\/(flowgate|approve|reject|status|cancel)(?:\s+([\s\S]*))?$/i.exec(line);
    if (!m) continue;
    const word = m[1].toLowerCase();
    const rest = (m[2] ?? '').trim();
    if (word === 'flowgate') return parseWords(rest);
    // Text after `/approve` is a remark ("/approve LGTM"), unless it starts with an approval id.
    if (word === 'approve') return { kind: 'command', command: { name: 'approve', ...approvalIdOf(rest.split(/\s+/)) } };
    return parseWords(`${word} ${rest}`);
  }
  return { kind: 'ignore' };
}

/** An approval id as the first word of a thread command (`approve <id>`), when it is one. */
function approvalIdOf(words: string[]): { approvalId?: string } {
  const first = words[0]?.replace(/^`|`$/g, '');
  return first && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(first) ? { approvalId: first.toLowerCase() } : {};
}

/** Turns `key=value` strings into the flow's parameter types; problems name the parameter. */
export function coerceParams(def: FlowDefinition, raw: Record<string, string>): { params: Record<string, unknown>; problems: string[] } {
  const params: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const p = def.parameters.find((x) => x.name === key);
    if (!p || p.type === 'string') {
      params[key] = value;
      continue;
    }
    if (p.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) problems.push(`${key}: must be a number, got "${value}"`);
      else params[key] = n;
    } else if (p.type === 'boolean') {
      if (!/^(true|false|yes|no)$/i.test(value)) problems.push(`${key}: must be true or false, got "${value}"`);
      else params[key] = /^(true|yes)$/i.test(value);
    } else if (p.type === 'array') {
      if (value.trim().startsWith('[')) {
        try {
          const parsed = JSON.parse(value);
          if (Array.isArray(parsed)) params[key] = parsed;
          else problems.push(`${key}: must be a list`);
        } catch {
          problems.push(`${key}: must be a JSON list or comma-separated values`);
        }
      } else params[key] = value.split(',').map((v) => v.trim()).filter(Boolean);
    } else {
      try {
        params[key] = JSON.parse(value);
      } catch {
        problems.push(`${key}: must be a JSON object`);
      }
    }
  }
  return { params, problems };
}

/** One line per parameter, for error replies: `username (string, required): Who gets access`. */
export const describeParameters = (def: FlowDefinition) =>
  def.parameters.map((p) => `${p.name} (${p.type}${p.required ? ', required' : p.default !== undefined ? `, default ${JSON.stringify(p.default)}` : ''})${p.description ? `: ${p.description}` : ''}`).join('\n');

/** Known names close to an unknown one (edit distance ≤ 3, or sharing a prefix), best first. */
export function suggest(unknown: string, known: string[], max = 3): string[] {
  const scored = known.map((k) => ({ k, d: distance(unknown.toLowerCase(), k.toLowerCase()) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(k.length / 3)) || k.startsWith(unknown) || unknown.startsWith(k));
  return scored.sort((a, b) => a.d - b.d).slice(0, max).map((x) => x.k);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
