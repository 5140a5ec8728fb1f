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

/** The fields of GET /sfp/api/flows/{id} the CLI shows. */
export interface RunView {
  id: string;
  taskType: string;
  repositoryIdentifier: string;
  status: string;
  engineStatus: string;
  success: boolean | null;
  triggeredBy: string;
  createdAt: string;
  finishedAt?: string;
  result?: unknown;
  error?: string | null;
  steps?: { ref: string; kind: string; status: string; error?: string | null }[];
  children?: { id: string; taskType: string; status: string }[];
}

/** The fields of an approval (GET /sfp/api/flows/approvals/{id}, or a decision's answer) the CLI shows. */
export interface ApprovalView {
  id: string;
  executionId?: string;
  status: string;
  message?: string;
  approvers: string[];
  quorum: number;
  approvalsReceived: number;
  requestedBy: string;
  expiresAt: string;
  decisions?: { email: string; verdict: string; reason: string | null }[];
}

const table = (rows: string[][], indent = '    ') => {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => indent + r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd() + '\n').join('');
};

/** A run as `flowgate status` prints it; `approval` is the one it waits for, if any. */
export function formatRun(run: RunView, approval: ApprovalView | null): string {
  const lines = [
    `Run ${run.id}: ${run.taskType} on ${run.repositoryIdentifier}`,
    `  status:       ${run.status} (${run.engineStatus})`,
    `  triggered by: ${run.triggeredBy}`,
    `  created:      ${run.createdAt}`,
    ...(run.finishedAt ? [`  finished:     ${run.finishedAt}`] : []),
  ];
  let text = lines.join('\n') + '\n';
  if (run.steps?.length) text += '  steps:\n' + table(run.steps.map((s) => [s.ref, s.kind, s.status, s.error ?? '']));
  if (run.children?.length) text += '  children:\n' + table(run.children.map((c) => [c.id, c.taskType, c.status]));
  if (approval) {
    text += [
      `  waiting for approval ${approval.id}: ${approval.approvalsReceived} of ${approval.quorum}, by ${approval.approvers.join(', ') || 'the project\'s owners'}`,
      ...(approval.message ? [`    "${approval.message}"`] : []),
      `    expires ${approval.expiresAt}; decide with: flowgate approve ${run.id}  |  flowgate reject ${run.id} --reason "…"`,
    ].join('\n') + '\n';
  }
  if (run.error) text += `  error:        ${run.error}\n`;
  // The result is what a finished run produced; before that it is empty.
  if (run.finishedAt && run.result !== undefined && run.result !== null) text += `  result:       ${JSON.stringify(run.result)}\n`;
  return text;
}

/** The answer to approve or reject: where the approval stands now. */
export function formatDecision(a: ApprovalView, me: string): string {
  const of = a.executionId ? ` of run ${a.executionId}` : '';
  if (a.status === 'pending') return `Your approval (${me}) is counted: approval ${a.id}${of} has ${a.approvalsReceived} of ${a.quorum}; still pending.\n`;
  const mine = a.decisions?.filter((d) => d.email === me).at(-1);
  return `Approval ${a.id}${of} is ${a.status} (by ${me}${mine?.reason ? `: ${mine.reason}` : ''}).\n`;
}
