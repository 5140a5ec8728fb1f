import type { FlowDefinition } from '../core/registry/manifest-schema.js';
import { coerceParams } from '../doors/commands.js';
import { CliFailure, type ApiClient, type CliIo } from './api-client.js';
import type { Command } from './args.js';
import { formatDecision, formatRun, type ApprovalView, type RunView } from './format.js';

/** The run, status, approve, reject and cancel commands: clients of the sfp Flows API. */

const FLOWS = '/sfp/api/flows';
const POLL_MS = 1000;
const FINISHED = ['Completed', 'Failed', 'Cancelled'];
const path = (id: string) => `${FLOWS}/${encodeURIComponent(id)}`;

type Cmd<K extends Command['kind']> = Extract<Command, { kind: K }>;

/**
 * Starts a flow. `key=value` strings become the flow's parameter types the way the chat doors
 * convert them (the API wants typed JSON), using the flow type's parameters from the server.
 */
export async function runCommand(cmd: Cmd<'run'>, api: ApiClient, io: CliIo): Promise<number> {
  const type = await api.request<{ parameters: FlowDefinition['parameters'] }>('GET', `${FLOWS}/types/${encodeURIComponent(cmd.flowType)}`);
  const { params, problems } = coerceParams({ parameters: type.parameters } as FlowDefinition, cmd.params);
  if (problems.length) throw new CliFailure(problems.join('\n'), 2);
  const started = await api.request<{ id: string; taskType: string; status: string }>('POST', `${FLOWS}/run`, {
    payload: { id: cmd.flowType, repositoryIdentifier: cmd.repo, ...params },
  });
  if (!cmd.wait) {
    io.out(cmd.json ? `${JSON.stringify(started, null, 2)}\n` : `Run ${started.id} started: ${started.taskType} on ${cmd.repo} (${started.status}).\nFollow it with: flowgate status ${started.id}\n`);
    return 0;
  }
  if (!cmd.json) io.out(`Run ${started.id} started: ${started.taskType} on ${cmd.repo}.\n`);
  const run = await waitUntilFinished(started.id, api, io, !cmd.json);
  io.out(cmd.json ? `${JSON.stringify(run, null, 2)}\n` : formatRun(run, null));
  return run.success ? 0 : 1;
}

/** Polls the run until it has finished, saying once each time it starts waiting for a person. */
async function waitUntilFinished(id: string, api: ApiClient, io: CliIo, talk: boolean): Promise<RunView> {
  let told: string | undefined;
  for (;;) {
    const run = await api.request<RunView>('GET', path(id));
    if (FINISHED.includes(run.status)) return run;
    if (talk && run.status === 'Suspended') {
      const approval = await pendingApproval(id, api);
      if (approval && told !== approval.id) {
        told = approval.id;
        io.err(`Waiting for approval ${approval.id} by ${approval.approvers.join(', ') || 'the project\'s owners'}: flowgate approve ${id} (as one of them)\n`);
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function pendingApproval(runId: string, api: ApiClient): Promise<ApprovalView | null> {
  try {
    const a = await api.request<ApprovalView>('GET', `${FLOWS}/approvals/${encodeURIComponent(runId)}`);
    return a.status === 'pending' && a.id ? a : null;
  } catch (err) {
    // No approval for this run: nothing to show.
    if (err instanceof CliFailure && err.message.startsWith('404 ')) return null;
    throw err;
  }
}

export async function statusCommand(cmd: Cmd<'status'>, api: ApiClient, io: CliIo): Promise<number> {
  const run = await api.request<RunView>('GET', path(cmd.runId));
  if (cmd.json) {
    io.out(`${JSON.stringify(run, null, 2)}\n`);
    return 0;
  }
  const approval = run.status === 'Suspended' ? await pendingApproval(run.id, api) : null;
  io.out(formatRun(run, approval));
  return 0;
}

/**
 * Approves or rejects as the token's person: the API requires the body's email to be the token's,
 * so the CLI asks the server whose token it holds first.
 */
export async function decideCommand(cmd: Cmd<'approve' | 'reject'>, api: ApiClient, io: CliIo): Promise<number> {
  const me = await api.request<{ name: string; email: string | null }>('GET', '/api/v1/whoami');
  if (!me.email) throw new CliFailure(`token "${me.name}" is not bound to a person (no email), so it cannot ${cmd.kind}: use a token created with --email`);
  const body = cmd.kind === 'approve'
    ? { approver: me.email, approverEmail: me.email, ...(cmd.reason ? { reason: cmd.reason } : {}) }
    : { rejector: me.email, rejectorEmail: me.email, reason: cmd.reason };
  const decided = await api.request<ApprovalView>('POST', `${FLOWS}/approvals/${encodeURIComponent(cmd.id)}/${cmd.kind}`, body);
  io.out(formatDecision(decided, me.email));
  return 0;
}

export async function cancelCommand(cmd: Cmd<'cancel'>, api: ApiClient, io: CliIo): Promise<number> {
  const r = await api.request<{ id: string; cancelledExecutionIds?: string[] }>('POST', `${path(cmd.runId)}/cancel`);
  const children = (r.cancelledExecutionIds ?? []).filter((id) => id !== r.id);
  io.out(`Run ${r.id} cancelled${children.length ? ` (and ${children.length} child run${children.length === 1 ? '' : 's'})` : ''}.\n`);
  return 0;
}
