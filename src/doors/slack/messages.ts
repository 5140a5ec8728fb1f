import type { presentApproval } from '../../core/approvals/present-approval.js';
import type { NoticeRun } from '../../core/notify/notice.js';
import { TERMINAL_RUN_STATUSES } from '../../core/status.js';
import { HELP } from '../commands.js';
import { formatDuration } from '../actions.js';

/**
 * What Flowgate shows in Slack, as pure functions of their inputs (checked against golden files
 * in test/golden/slack/). Block Kit: https://api.slack.com/reference/block-kit/blocks
 */
export type Block = Record<string, unknown>;
export interface SlackMessage { text: string; blocks?: Block[] }
/** An approval as notices carry it. */
export type ApprovalView = ReturnType<typeof presentApproval>;
export interface FlowRef { id: string; name: string }

export const APPROVE_ACTION = 'flowgate_approve';
export const REJECT_ACTION = 'flowgate_reject';
export const REJECT_VIEW = 'flowgate_reject';
export const REASON_BLOCK = 'reason';
export const REASON_INPUT = 'reason';

const RUN_EMOJI: Record<string, string> = {
  completed: ':white_check_mark:', partial: ':warning:', failed: ':x:', cancelled: ':no_entry_sign:', timed_out: ':hourglass:',
};
const HEADLINE: Record<string, string> = {
  pending: 'Approval needed', approved: 'Approved', rejected: 'Rejected', expired: 'Expired', cancelled: 'Cancelled', stale: 'Closed',
};

/** Slack's mrkdwn needs &, < and > escaped in text we did not write. */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const show = (v: unknown) => clip(typeof v === 'string' ? v : JSON.stringify(v) ?? 'null', 300);
const plain = (text: string) => ({ type: 'plain_text', text: clip(text, 150), emoji: true });
const section = (text: string): Block => ({ type: 'section', text: { type: 'mrkdwn', text: clip(text, 3000) } });
const context = (text: string): Block => ({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(text, 3000) }] });
const list = (title: string, entries: [string, unknown][]) => `*${title}*\n${entries.map(([k, v]) => `• ${esc(k)}: ${esc(show(v))}`).join('\n')}`;

/** A time every reader sees in their own time zone, with a UTC fallback. */
export function slackDate(iso: string): string {
  const d = new Date(iso);
  const fallback = `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<!date^${Math.floor(d.getTime() / 1000)}^{date_short_pretty} at {time}|${fallback}>`;
}

const person = (d: { name: string; email: string }) => (d.name && d.name.toLowerCase() !== d.email ? `${esc(d.name)} (${d.email})` : d.email);
const parametersOf = (payload: Record<string, unknown> | undefined) => Object.entries(payload ?? {}).filter(([k]) => k !== 'id');
const flowTitle = (flow: FlowRef) => (flow.name && flow.name !== flow.id ? `${esc(flow.name)} (\`${flow.id}\`)` : `\`${flow.id}\``);

export function quorumProgress(a: Pick<ApprovalView, 'approvalsReceived' | 'quorum'>): string {
  return `${a.approvalsReceived} of ${a.quorum} approvals`;
}

function approversText(a: ApprovalView): string {
  if (a.approversSource === 'explicit') return a.approvers.join(', ');
  return `owners of ${a.repositoryIdentifier ?? 'the project'}${a.approvers.length ? ` (${a.approvers.join(', ')})` : ''}`;
}

function outcome(a: ApprovalView): string {
  const when = a.resolvedAt ? ` · ${slackDate(a.resolvedAt)}` : '';
  const approvers = a.decisions.filter((d) => d.verdict === 'approve');
  switch (a.status) {
    case 'approved':
      return `:white_check_mark: *Approved* by ${approvers.map(person).join(', ')}${when}`;
    case 'rejected': {
      const d = a.decisions.find((x) => x.verdict === 'reject');
      return `:x: *Rejected* by ${d ? person(d) : a.resolvedBy ?? 'someone'}${when}${a.reason ? `\n>${esc(a.reason).replace(/\n/g, '\n>')}` : ''}`;
    }
    case 'expired':
      return `:hourglass: *Expired* ${slackDate(a.resolvedAt ?? a.expiresAt)} without a decision${approvers.length ? ` (${quorumProgress(a)})` : ''}`;
    case 'cancelled':
      return `:no_entry_sign: *Cancelled*${a.resolvedBy ? ` by ${a.resolvedBy}` : ''}${when}: the run was cancelled`;
    default:
      return `:heavy_minus_sign: *Closed*${when}: the run ended before a decision`;
  }
}

/** The approval request in the run's thread: Approve/Reject while pending, the outcome after. */
export function approvalMessage(a: ApprovalView, flow: FlowRef, run?: Pick<NoticeRun, 'payload'> | null): SlackMessage {
  const pending = a.status === 'pending';
  const headline = `${HEADLINE[a.status] ?? a.status}: ${flow.name || flow.id}`;
  const votes = a.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email);
  const blocks: Block[] = [{ type: 'header', text: plain(headline) }];
  if (a.message) blocks.push(section(esc(a.message)));
  blocks.push({
    type: 'section',
    fields: [
      `*Flow*\n${flowTitle(flow)}`,
      `*Requested by*\n${a.requestedBy}`,
      `*Repository*\n${a.repositoryIdentifier ?? '—'}`,
      `*Run*\n\`${a.executionId ?? '—'}\``,
      `*Approvers*\n${esc(approversText(a))}`,
      pending ? `*Expires*\n${slackDate(a.expiresAt)}` : `*Requested*\n${slackDate(a.requestedAt)}`,
    ].map((text) => ({ type: 'mrkdwn', text: clip(text, 2000) })),
  });
  const params = parametersOf(run?.payload);
  if (params.length) blocks.push(section(list('Parameters', params)));
  const extra = Object.entries(a.context).filter(([k]) => k !== 'callback' && k !== 'taskType');
  if (extra.length) blocks.push(section(list('Context', extra)));
  if (pending) {
    blocks.push(context(`${quorumProgress(a)}${votes.length ? ` so far: ${votes.join(', ')}` : ''}`));
    blocks.push({
      type: 'actions',
      block_id: `flowgate_approval`,
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, text: plain('Approve'), style: 'primary', value: a.id },
        { type: 'button', action_id: REJECT_ACTION, text: plain('Reject'), style: 'danger', value: a.id },
      ],
    });
  } else {
    blocks.push(section(outcome(a)));
    blocks.push(context(`${quorumProgress(a)} · approval \`${a.id}\``));
  }
  const text = esc(pending
    ? `${headline} on ${a.repositoryIdentifier ?? 'no project'}, requested by ${a.requestedBy} (${quorumProgress(a)})`
    : `${headline} on ${a.repositoryIdentifier ?? 'no project'}${a.resolvedBy ? ` by ${a.resolvedBy}` : ''}${a.reason ? ` (${clip(a.reason, 200)})` : ''}`);
  return { text, blocks };
}

/** The modal asking why (the reason is required); `private_metadata` is the approval id. */
export function rejectModal(a: ApprovalView, flow: FlowRef): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: REJECT_VIEW,
    private_metadata: a.id,
    title: plain('Reject request'),
    submit: plain('Reject'),
    close: plain('Cancel'),
    blocks: [
      section(`Reject *${esc(flow.name || flow.id)}* on ${a.repositoryIdentifier ?? 'no project'}, requested by ${a.requestedBy}?${a.message ? `\n>${esc(a.message).replace(/\n/g, '\n>')}` : ''}`),
      {
        type: 'input', block_id: REASON_BLOCK, label: plain('Why?'),
        element: { type: 'plain_text_input', action_id: REASON_INPUT, multiline: true, min_length: 1, max_length: 2000, placeholder: plain('The requester sees this reason') },
      },
    ],
  };
}

function took(run: NoticeRun): string {
  return run.startedAt && run.finishedAt ? ` in ${formatDuration(Date.parse(run.finishedAt) - Date.parse(run.startedAt))}` : '';
}

/** The message that heads a run's thread; edited when the run ends. */
export function runCard(run: NoticeRun, flow: FlowRef): SlackMessage {
  const done = (TERMINAL_RUN_STATUSES as readonly string[]).includes(run.status);
  const emoji = done ? RUN_EMOJI[run.status] ?? ':grey_question:' : ':arrow_forward:';
  const blocks: Block[] = [section(`${emoji} ${flowTitle(flow)} on *${run.repositoryIdentifier}*\nStarted by ${run.triggeredBy}`)];
  const params = parametersOf(run.payload);
  if (params.length) blocks.push(section(list('Parameters', params)));
  blocks.push(context(done
    ? `Run \`${run.id}\` · *${run.status}*${took(run)}${run.error ? `: ${esc(clip(run.error, 500))}` : ''}`
    : `Run \`${run.id}\` · in progress: approvals, progress and the result follow in this thread`));
  return { text: esc(`${flow.name || flow.id} on ${run.repositoryIdentifier}, started by ${run.triggeredBy}: ${done ? `${run.status}${took(run)}` : 'in progress'}`), blocks };
}

/** The reply in the thread when a run ends: status, duration, error and outputs. */
export function runFinishedReply(run: NoticeRun, flow: FlowRef): SlackMessage {
  const headline = `${RUN_EMOJI[run.status] ?? ':grey_question:'} *${esc(flow.name || flow.id)}* ${run.status}${took(run)}`;
  const blocks: Block[] = [section(`${headline}${run.error ? `\n*Error:* ${esc(clip(run.error, 1000))}` : ''}`)];
  const outputs = Object.entries(run.result ?? {});
  if (outputs.length) blocks.push(section(list('Outputs', outputs)));
  blocks.push(context(`Run \`${run.id}\``));
  return { text: esc(`${flow.name || flow.id} ${run.status}${took(run)}${run.error ? `: ${clip(run.error, 200)}` : ''}`), blocks };
}

/** A notify step's message, posted in the thread. */
export const runMessage = (message: string): SlackMessage => ({ text: esc(message) });

/** `approvals`: the pending requests this person may decide, and where to find them. */
export function approvalsList(items: { approval: ApprovalView; flow: FlowRef }[]): SlackMessage {
  if (!items.length) return { text: 'No pending approvals you can decide.' };
  const lines = items.map(({ approval: a, flow }) => {
    const where = a.context.callback && typeof a.context.callback === 'object' ? (a.context.callback as { slack?: { channel?: string } }).slack?.channel : undefined;
    return `• *${esc(flow.name || flow.id)}* on ${a.repositoryIdentifier ?? 'no project'}, requested by ${a.requestedBy}, ${quorumProgress(a)}, expires ${slackDate(a.expiresAt)}${where ? ` · in <#${where}>` : ''} · approval \`${a.id}\``;
  });
  return { text: `Pending approvals you can decide (${items.length}):\n${lines.join('\n')}` };
}

/** The DM with a one-time console link: it signs in whoever opens it, so it is sent to one person only. */
export function signInLinkMessage(url: string, expiresAt: Date): SlackMessage {
  const text = `Your sign-in link for the Flowgate console: <${url}|sign in to Flowgate>. It works once and expires ${slackDate(expiresAt.toISOString())}. If you did not ask for it, ignore it.`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}

export const helpText = (command: string) => `Flowgate commands (\`${command} …\` or mention @Flowgate):\n\`\`\`${esc(HELP)}\`\`\``;
