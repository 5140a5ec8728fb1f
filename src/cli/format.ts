import type { presentToken } from '../core/identity/tokens.js';

type TokenView = ReturnType<typeof presentToken>;

const COLUMNS = ['id', 'name', 'role', 'email', 'projects', 'createdAt', 'lastUsedAt'] as const;

/** The one time a secret is shown. */
export function formatCreated(token: TokenView, secret: string): string {
  return [
    'Token created. Copy the secret now: it is shown only once and only its hash is stored.',
    '',
    `  id:       ${token.id}`,
    `  name:     ${token.name}`,
    `  role:     ${token.role}`,
    ...(token.email ? [`  email:    ${token.email}`] : []),
    ...(token.projects ? [`  projects: ${token.projects.join(',')}`] : []),
    `  secret:   ${secret}`,
    '',
  ].join('\n');
}

/** A plain-text table; empty cells show "-" (for projects: every project). */
export function formatTokenTable(tokens: TokenView[]): string {
  if (!tokens.length) return 'No tokens.\n';
  const rows = tokens.map((t) => COLUMNS.map((c) => cell(t[c])));
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(COLUMNS), ...rows.map(line)].join('\n') + '\n';
}

function cell(value: string | string[] | null): string {
  if (value === null) return '-';
  return Array.isArray(value) ? value.join(',') : value;
}
