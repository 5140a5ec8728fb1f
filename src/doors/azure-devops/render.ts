import { escapeHtml as esc } from './html.js';

/**
 * The comments Flowgate writes on Azure DevOps work items, as pure functions of plain data
 * (tested against golden files). Anything a person or a flow wrote is escaped and quoted
 * (`<blockquote>`), so no line Flowgate writes can ever read as a command.
 */

export interface ApprovalView {
  id: string;
  runId?: string | null;
  taskType?: string | null;
  message?: string | null;
  requestedBy: string;
  approvers: string[];
  approversSource: 'explicit' | 'owners';
  quorum: number;
  approvalsReceived: number;
  allowSelfApproval: boolean;
  expiresAt: string;
  status: string;
  resolvedBy?: string | null;
  resolvedAt?: string | null;
  reason?: string | null;
  decisions: { email: string; name?: string; verdict: 'approve' | 'reject'; reason?: string | null; at: string }[];
}

export interface StatesView {
  approvedState: string;
  rejectedState: string;
}

export interface RunView {
  id: string;
  taskType: string;
  status: string;
  error?: string | null;
  result?: Record<string, unknown> | null;
  startedAt?: string | null;
  finishedAt?: string | null;
}

const quote = (text: string) => `<blockquote>${esc(text).replace(/\n/g, '<br>')}</blockquote>`;
const quotePre = (text: string) => `<blockquote><pre>${esc(text)}</pre></blockquote>`;
/** Flowgate's own texts mark names with backticks (`gated`): shown as code. */
const quoteText = (text: string) => `<blockquote>${esc(text).replace(/`([^`\n]+)`/g, '<code>$1</code>').replace(/\n/g, '<br>')}</blockquote>`;
const code = (text: string) => `<code>${esc(text)}</code>`;
const list = (items: string[]) => `<ul>\n${items.map((i) => `<li>${i}</li>`).join('\n')}\n</ul>`;
const header = (text: string) => `<p><b>Flowgate</b> · ${text}</p>`;

/** `2026-11-23T10:00:00.000Z` → `2026-11-23 10:00 UTC`. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

const runName = (taskType: string | null | undefined, runId: string | null | undefined) =>
  `${taskType ? `<b>${esc(taskType)}</b> ` : ''}run${runId ? ` ${code(runId)}` : ''}`;

/** The request: what needs approval, who can approve, quorum, expiry, and how to decide. */
export function renderApprovalRequest(a: ApprovalView, states: StatesView): string {
  const who = a.approvers.length ? a.approvers.map(esc).join(', ') : 'nobody (the project has no owners)';
  const source = a.approversSource === 'owners' ? ' (the project’s owners)' : '';
  const quorum = `${a.quorum} of ${a.approvers.length || a.quorum}${a.quorum > 1 ? ', each person counts once' : ''}`;
  const self = a.allowSelfApproval ? 'the requester may approve their own request' : `${esc(a.requestedBy)} requested this and may not approve it`;
  return [
    header(`approval needed for ${runName(a.taskType, a.runId)}`),
    ...(a.message ? [quote(a.message)] : []),
    list([
      `Requested by: ${esc(a.requestedBy)}`,
      `Who can approve: ${who}${source}`,
      `Approvals needed: ${quorum}; ${self}`,
      `Expires: ${formatTime(a.expiresAt)}`,
    ]),
    `<p>To approve, add a comment that starts with ${code('/approve')}, or move this work item to the state <b>${esc(states.approvedState)}</b>. ` +
      `To reject, comment ${code('/reject <reason>')}, or move it to <b>${esc(states.rejectedState)}</b>. One rejection rejects.</p>`,
    `<p>Approval ${code(a.id)}</p>`,
  ].join('\n');
}

/** A vote, a decision, expiry or cancellation of an approval. */
export function renderApprovalUpdate(a: ApprovalView): string {
  const name = runName(a.taskType, a.runId);
  switch (a.status) {
    case 'pending': {
      const last = [...a.decisions].reverse().find((d) => d.verdict === 'approve');
      const voters = [...new Set(a.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email))];
      return [
        header(`${last ? `${esc(last.email)} approved` : 'a vote was recorded'} — ${a.approvalsReceived} of ${a.quorum} approvals for ${name}`),
        `<p>Approved so far: ${voters.map(esc).join(', ') || 'nobody'}. Still needed: ${Math.max(0, a.quorum - a.approvalsReceived)}. Expires ${formatTime(a.expiresAt)}.</p>`,
      ].join('\n');
    }
    case 'approved':
      return header(`✅ approved by ${esc(a.resolvedBy ?? 'the approvers')} — ${name} continues`);
    case 'rejected':
      return [header(`❌ rejected by ${esc(a.resolvedBy ?? 'an approver')} — ${name} stops`), ...(a.reason ? [quote(a.reason)] : [])].join('\n');
    case 'expired':
      return header(`⌛ the approval for ${name} expired at ${formatTime(a.expiresAt)} without a decision — the run stops`);
    case 'cancelled':
      return header(`the approval for ${name} was cancelled${a.resolvedBy ? ` by ${esc(a.resolvedBy)}` : ''} (the run was cancelled)`);
    case 'stale':
      return header(`the approval for ${name} is no longer needed: the run ended`);
    default:
      return header(`the approval for ${name} is now ${esc(a.status)}`);
  }
}

const STATUS_ICON: Record<string, string> = { completed: '✅', partial: '⚠️', failed: '❌', cancelled: '⏹️', timed_out: '⌛' };

/** The outcome of a run, with its result (capped). */
export function renderRunFinished(r: RunView, maxResultChars = 2000): string {
  const took = r.startedAt && r.finishedAt ? ` in ${duration(Date.parse(r.finishedAt) - Date.parse(r.startedAt))}` : '';
  const lines = [header(`${STATUS_ICON[r.status] ?? 'ℹ️'} ${runName(r.taskType, r.id)} ${esc(r.status)}${took}`)];
  if (r.error) lines.push(quote(r.error));
  const result = r.result && Object.keys(r.result).length ? JSON.stringify(r.result, null, 2) : '';
  if (result) {
    const shown = result.length > maxResultChars ? `${result.slice(0, maxResultChars)}\n… (${result.length - maxResultChars} more characters)` : result;
    lines.push(`<p>Result:</p>\n${quotePre(shown)}`);
  }
  return lines.join('\n');
}

/** A `notify` step's message. */
export function renderRunMessage(taskType: string | null | undefined, runId: string | null | undefined, message: string): string {
  return [header(`message from ${runName(taskType, runId)}`), quote(message)].join('\n');
}

/** A run started from this work item. */
export function renderRunStarted(r: { id: string; taskType: string; triggeredBy: string; because: string }): string {
  return header(`started ${runName(r.taskType, r.id)} for ${esc(r.triggeredBy)} (${esc(r.because)})`);
}

/** Someone's command or state change was not acted on; `text` says why (from the core). */
export function renderRefusal(person: string, what: string, text: string, stillPending: boolean): string {
  return [
    header(`${esc(person)}: ${esc(what)} was not accepted`),
    quoteText(text),
    ...(stillPending ? ['<p>The approval is still pending.</p>'] : []),
  ].join('\n');
}

/** A plain answer to a command (status, errors, help). */
export function renderReply(title: string, text: string): string {
  return [header(esc(title)), quoteText(text)].join('\n');
}
