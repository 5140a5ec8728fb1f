import { formatDuration } from '../actions.js';
import { inert } from './inert.js';

/**
 * Comment bodies, as pure functions of plain views (checked against golden files in
 * test/golden/github/). No line of a comment starts with a command: Flowgate ignores bot comments,
 * and a reader copying a line should copy an example, not trigger one. Text Flowgate did not write
 * (payload values, reasons, errors, emails) goes through `inert`: the only people a comment
 * mentions are the linked logins Flowgate puts there itself.
 */

/** A person as a comment shows them: `@login (email)` when their GitHub login is linked. */
export interface Who { email: string; login?: string | null }

export interface DecisionView { who: Who; verdict: 'approve' | 'reject'; reason?: string | null; at: string }

export interface ApprovalView {
  id: string;
  runId?: string | null;
  taskType?: string | null;
  repositoryIdentifier: string;
  status: string;
  requestedBy: Who;
  message?: string | null;
  /** The approval step's context (what is being approved), shown as a list. */
  details: Record<string, unknown>;
  approvers: Who[];
  approversSource: 'explicit' | 'owners';
  quorum: number;
  approvalsReceived: number;
  allowSelfApproval: boolean;
  expiresAt: string;
  resolvedAt?: string | null;
  decisions: DecisionView[];
}

export interface RunView {
  id: string;
  taskType: string;
  status: string;
  triggeredBy: Who;
  startedAt?: string | null;
  finishedAt?: string | null;
  error?: string | null;
  result?: Record<string, unknown>;
  cicdRunUrl?: string | null;
}

const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
export const who = (w: Who) => (w.login && LOGIN.test(w.login) ? `@${w.login} (${inert(w.email)})` : inert(w.email));
/** `2026-11-22 20:30 UTC`. */
export const utc = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
/** On one line, with no pipes breaking a table: for composed markdown, which keeps its markup. */
const cell = (text: string) => text.replace(/\s*[\r\n]+\s*/g, ' ').replace(/\|/g, '\\|');
/** Text from elsewhere inside a table cell or a line: also inert. */
const text = (t: string) => cell(inert(t));
const code = (t: string) => `\`${t.replace(/`/g, "'").replace(/\s*[\r\n]+\s*/g, ' ')}\``;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const APPROVAL_TITLE: Record<string, string> = {
  pending: '🔐 Approval needed', approved: '✅ Approved', rejected: '❌ Rejected', expired: '⌛ Expired', cancelled: '🚫 Cancelled', stale: '➖ No longer needed',
};

/** The approval comment: posted when approval is requested, edited after every vote and decision. */
export function renderApproval(a: ApprovalView): string {
  const subject = a.taskType ? `${APPROVAL_TITLE[a.status] ?? a.status}: ${code(a.taskType)}` : APPROVAL_TITLE[a.status] ?? a.status;
  const approvers = a.approvers.length ? a.approvers.map(who).join(', ') : 'nobody';
  const rows: [string, string][] = [
    ['Requested by', who(a.requestedBy)],
    ...(a.runId ? [['Run', `${code(a.runId)}${a.taskType ? ` (${inert(a.taskType)})` : ''}`] as [string, string]] : []),
    ['Can be approved by', `${approvers}${a.approversSource === 'owners' ? ` — the owners of ${a.repositoryIdentifier}` : ''}${a.allowSelfApproval ? '' : ' (not by the requester)'}`],
    ['Quorum', `${plural(a.quorum, 'approval')} needed — ${a.approvalsReceived} so far`],
  ];
  const approvals = a.decisions.filter((d) => d.verdict === 'approve');
  if (a.status === 'pending') {
    if (approvals.length) rows.push(['Approved so far by', approvals.map((d) => who(d.who)).join(', ')]);
    rows.push(['Expires', utc(a.expiresAt)]);
  } else rows.push(['Outcome', outcome(a)]);
  const lines = [
    `### ${subject}`,
    '',
    ...(a.message ? [`> ${text(a.message)}`, ''] : []),
    ...Object.entries(a.details).map(([k, v]) => `- **${text(k)}**: ${text(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v))}`),
    ...(Object.keys(a.details).length ? [''] : []),
    '| | |',
    '| --- | --- |',
    ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
  ];
  if (a.status === 'pending') {
    lines.push(
      'To decide, comment on this thread with a line that starts with the command:',
      '',
      '- `/approve`',
      '- `/reject <reason>` — one rejection rejects the request',
      '',
    );
  }
  lines.push(`<sub>Flowgate approval ${code(a.id)}</sub>`);
  return lines.join('\n');
}

function outcome(a: ApprovalView): string {
  const at = a.resolvedAt ? ` at ${utc(a.resolvedAt)}` : '';
  switch (a.status) {
    case 'approved':
      return `approved by ${a.decisions.filter((d) => d.verdict === 'approve').map((d) => who(d.who)).join(', ')}${at}`;
    case 'rejected': {
      const r = [...a.decisions].reverse().find((d) => d.verdict === 'reject');
      return `rejected${r ? ` by ${who(r.who)}` : ''}${at}${r?.reason ? `: ${inert(r.reason)}` : ''}`;
    }
    case 'expired':
      return `expired at ${utc(a.resolvedAt ?? a.expiresAt)} without a decision`;
    case 'cancelled':
      return `cancelled with its run${at}`;
    default:
      return `the run ended before a decision${at}`;
  }
}

const RUN_ICON: Record<string, string> = { completed: '✅', partial: '⚠️', failed: '❌', cancelled: '🚫', timed_out: '⌛' };
const MAX_RESULT = 4000;

/** The result of a run, replied in the thread it was started from. */
export function renderRunFinished(r: RunView): string {
  const took = r.startedAt && r.finishedAt ? ` in ${formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt))}` : '';
  const lines = [
    `### ${RUN_ICON[r.status] ?? 'ℹ️'} ${code(r.taskType)} ${r.status.replace('_', ' ')}`,
    '',
    `Run ${code(r.id)}, started by ${who(r.triggeredBy)}, ${r.status.replace('_', ' ')}${took}.`,
  ];
  if (r.error) lines.push('', `> ${text(r.error)}`);
  // The pipeline's own address stays a link; anything that is not a plain http(s) URL is shown inert.
  if (r.cicdRunUrl) lines.push('', `Pipeline run: ${/^https?:\/\/[^\s<>()[\]`'"]+$/.test(r.cicdRunUrl) ? r.cicdRunUrl : text(r.cicdRunUrl)}`);
  if (r.result && Object.keys(r.result).length) {
    let json = JSON.stringify(r.result, null, 2);
    if (json.length > MAX_RESULT) json = `${json.slice(0, MAX_RESULT)}\n… (truncated)`;
    lines.push('', '<details><summary>Result</summary>', '', '```json', json.replace(/```/g, "'''"), '```', '', '</details>');
  }
  return lines.join('\n');
}

/** A `notify` step's message. */
export const renderRunMessage = (taskType: string, runId: string, message: string) => `💬 ${code(taskType)} run ${code(runId)}: ${inert(message)}`;

/** The answer to `/flowgate run …`. */
export function renderRunStarted(login: string, run: { id: string; taskType: string; status: string }): string {
  return [
    `@${login} started ${code(run.taskType)} run ${code(run.id)} (${run.status}).`,
    '',
    'Approval requests and the result will be posted in this thread; comment `/status` to see where it is or `/cancel` to stop it.',
  ].join('\n');
}

/** The answer to `/flowgate help`. */
export function renderHelp(flowTypes: { id: string; description?: string }[]): string {
  return [
    'Flowgate commands — each on a line of its own, at the start of the line:',
    '',
    '| command | what it does |',
    '| --- | --- |',
    '| `/flowgate run <flowType> key=value …` | start a flow for this repository (quote values with spaces: `reason="db restore"`); owners, members and collaborators only |',
    '| `/approve [<approvalId>]` | approve the pending request of this thread (name it when several are pending) |',
    '| `/reject [<approvalId>] <reason>` | reject it |',
    '| `/status [<runId>]` | show the run of this thread |',
    '| `/cancel [<runId>]` | cancel it |',
    '| `/flowgate pause [<runId>]`, `/flowgate resume [<runId>]` | pause it (running steps finish, nothing new starts), resume it |',
    '| `/flowgate retry [<runId>]` | retry it once it has ended: a new run in this thread that keeps its completed steps |',
    '| `/flowgate approvals` | pending approvals of this repository |',
    '| `/flowgate login` | how to sign in to the web console (the link itself comes by Slack DM) |',
    '| `/flowgate help` | this text |',
    '',
    'Flow types:',
    '',
    ...flowTypes.map((f) => `- ${code(f.id)}${f.description ? ` — ${text(f.description)}` : ''}`),
  ].join('\n');
}

/** A login Flowgate cannot map to a person. */
export function renderUnlinked(login: string): string {
  return [
    `@${login} your GitHub account is not linked to a Flowgate identity, so Flowgate cannot tell who you are.`,
    '',
    `A Flowgate owner links it with \`PUT /api/v1/identities/{your email}\` and the body \`{"githubLogin": "${login}"}\`; then comment again.`,
  ].join('\n');
}

/** A short answer to one person; what it says may quote their command, parameters or the core's reasons. */
export const renderReply = (login: string, said: string) => `@${login} ${inert(said)}`;
