import type { Callback } from '../db/entities/run.js';
import type { ClaimedStep } from './claim.js';
import type { RunStatus } from '../core/status.js';
import type { LogLevel } from '../db/entities/log-line.js';
import type { StepDefinition, StepKindName } from '../core/registry/manifest-schema.js';
import type { Notifier } from '../core/notify/notifier.js';
import { callHttp } from '../core/net/http-call.js';
import { render } from '../core/expressions/templates.js';
import { parseInput } from '../engine/steps/step-kind.js';
import { StepFailure } from '../engine/step-failure.js';

/** What a v2 step kind gets: everything in memory, nothing durable (the executor's flush is). */
export interface KindCall {
  step: StepDefinition;
  run: { id: string; taskType: string; repositoryIdentifier: string; callback: Callback | null };
  /** The expression context without credentials. */
  context: Record<string, unknown>;
  credentials: Record<string, string>;
  notifier: Notifier;
  outboundFetch: typeof fetch;
  /** Epoch ms at which the step times out, if it has a timeout. */
  deadline?: number;
  note(level: LogLevel, message: string): void;
  /** The step's row as claimed, when an earlier claim parked it (`waiting`). */
  prior?: ClaimedStep;
  /** For kinds that wait on Flowgate's own rows (approvals). */
  extra: KindExtras;
}

/** Services a few kinds need, supplied by the executor's owner. */
export interface KindExtras {
  approvals: import('../core/approvals/approval-service.js').ApprovalService;
  /** Asks the approvers in the run's thread (best effort: a failed post is logged, never fails the step). */
  announceApproval(runId: string, approval: import('../db/entities/approval.js').Approval, note: KindCall['note']): Promise<void>;
  requestedBy: string;
}

/**
 * Thrown by a kind that has to wait: the step is written `waiting` (with what it waits for and
 * what it must remember) and the run released until `wakeAt`, or until a signal wakes it.
 */
export class Park {
  constructor(readonly wakeAt: number | null, readonly waitingFor: string, readonly runStatus: RunStatus, readonly output: unknown = null) {}
}

export type Kind = (c: KindCall) => Promise<unknown>;

const log: Kind = async (c) => {
  const input = parseInput('log', render(c.step.with, c.context));
  c.note(input.level, input.message);
  return { message: input.message, level: input.level };
};

const notify: Kind = async (c) => {
  const input = parseInput('notify', render(c.step.with, c.context));
  const outcome = await c.notifier.notify(c.run.callback, {
    event: 'run.message', runId: c.run.id, taskType: c.run.taskType, repositoryIdentifier: c.run.repositoryIdentifier, message: input.message,
  });
  c.note(outcome.delivered ? 'info' : 'warn', outcome.delivered ? `Notified: ${input.message}` : `Not delivered (${outcome.reason}): ${input.message}`);
  return { delivered: outcome.delivered, message: input.message, ...(outcome.reason ? { reason: outcome.reason } : {}) };
};

/** The same request as the DBOS engine's http.request kind (`core/net/http-call.ts`). */
const httpRequest: Kind = async (c) => {
  const left = c.deadline === undefined ? Infinity : c.deadline - Date.now();
  const result = await callHttp(c.step, { context: c.context, credentials: c.credentials, fetch: c.outboundFetch, timeLeftMs: left });
  c.note(result.ok ? 'info' : 'error', result.line);
  if (!result.ok) throw new StepFailure('output' in result ? `HTTP ${result.status}: ${result.line}` : result.line, result.retryable);
  return result.output;
};

/** A durable sleep: the wake-up time is kept on the step row, so a re-claimed run wakes at the original time. */
const sleepKind: Kind = async (c) => {
  const remembered = c.prior?.status === 'waiting' ? (c.prior.output as { until?: string } | null)?.until : undefined;
  let until: number;
  if (remembered) {
    until = Date.parse(remembered);
  } else {
    const input = parseInput('sleep', render(c.step.with, c.context));
    until = input.until ? Date.parse(input.until) : Date.now() + (input.seconds ?? (input.minutes ?? 0) * 60) * 1000;
    c.note('info', `Sleeping until ${new Date(until).toISOString()}`);
  }
  if (c.deadline !== undefined && until > c.deadline) {
    if (Date.now() >= c.deadline) throw new StepFailure(`step timed out after ${c.step.timeout}s while sleeping`, false);
    until = c.deadline;
  }
  if (Date.now() < until) throw new Park(until, `time:${new Date(until).toISOString()}`, 'waiting', { until: new Date(until).toISOString() });
  return { until: new Date(until).toISOString() };
};

/**
 * Opens the step's approval (once: the service answers the existing one for the same step) and
 * parks the run `suspended` until a decision signals it or the approval expires. The approval
 * row is the truth: every claim re-reads it.
 */
const approvalKind: Kind = async (c) => {
  const { approvals } = c.extra;
  const waitKey = c.prior?.status === 'waiting' ? c.prior.waitingFor : null;
  let a;
  if (waitKey?.startsWith('approval:')) {
    a = await approvals.get(waitKey.slice('approval:'.length));
    if (!a) throw new StepFailure('the approval this step waited for is gone', false);
  } else {
    const input = parseInput('approval', render(c.step.with, c.context));
    const approvers = typeof input.approvers === 'string' ? [input.approvers] : input.approvers;
    try {
      a = await approvals.openForStep({
        runId: c.run.id, stepRef: c.step.ref, repositoryIdentifier: c.run.repositoryIdentifier, requestedBy: c.extra.requestedBy, callback: c.run.callback,
      }, {
        approvers, quorum: input.quorum, allowSelfApproval: input.allowSelfApproval, timeoutHours: input.timeoutHours,
        message: input.message ?? null, context: { taskType: c.run.taskType, ...input.context },
      }, new Date());
    } catch (err) {
      // An approval nobody could ever decide fails the run now rather than at its expiry.
      if ((err as { status?: number }).status === 400) throw new StepFailure(`approval cannot be requested: ${(err as Error).message}`, false);
      throw err;
    }
    c.note('info', `Approval ${a.id} requested from ${approvers?.length ? approvers.join(', ') : 'the project owners'} (quorum ${input.quorum}, expires ${a.expiresAt.toISOString()})`);
    await c.extra.announceApproval(c.run.id, a, c.note);
  }
  if (a.status === 'pending' && a.expiresAt.getTime() <= Date.now()) a = await approvals.expire(a.id);
  if (a.status === 'pending') throw new Park(a.expiresAt.getTime(), `approval:${a.id}`, 'suspended');
  const verdict = a.status === 'approved' || a.status === 'rejected' ? ` by ${a.resolvedBy ?? 'nobody'}` : '';
  c.note(a.status === 'approved' ? 'info' : 'warn', `Approval ${a.status}${verdict}${a.reason ? `: ${a.reason}` : ''}`);
  if (a.status === 'approved') {
    return { approvalId: a.id, status: 'approved', approvedBy: a.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email), decisions: a.decisions };
  }
  if (a.status === 'rejected') throw new StepFailure(`approval rejected by ${a.resolvedBy ?? 'nobody'}${a.reason ? `: ${a.reason}` : ''}`, false);
  throw new StepFailure(`approval ${a.status}`, false);
};

/** Kinds the v2 executor runs so far; a run using another fails that step, saying so. */
export const V2_KINDS: Partial<Record<StepKindName, Kind>> = { log, notify, 'http.request': httpRequest, sleep: sleepKind, approval: approvalKind };

/** Kinds with effects outside Flowgate: they start only once what they depend on is committed. */
export const EFFECTFUL = new Set<StepKindName>(['notify', 'http.request']);
