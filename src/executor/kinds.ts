import type { Callback } from '../db/entities/run.js';
import type { ClaimedChild, ClaimedEvent, ClaimedStep } from './claim.js';
import type { NewChildRun } from './flush.js';
import type { RunStatus } from '../core/status.js';
import type { LogLevel } from '../db/entities/log-line.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import type { Notifier } from '../core/notify/notifier.js';
import { callHttp } from '../core/net/http-call.js';
import { render } from '../core/expressions/templates.js';
import { parseInput } from '../engine/steps/step-kind.js';
import { messageOf, StepFailure } from '../engine/step-failure.js';
import { eventTopic } from '../engine/steps/wait-for-event.js';
import { AppError } from '../errors.js';
import { idFrom } from '../core/ids.js';
import { isTerminalRun } from '../core/status.js';
import { rowTo } from '../db/sql.js';
import { ApprovalSchema, type Approval } from '../db/entities/approval.js';

/** What a v2 step kind gets: everything in memory, nothing durable (the executor's flush is). */
export interface KindCall {
  step: StepDefinition;
  run: { id: string; taskType: string; repositoryIdentifier: string; triggeredBy: string; callback: Callback | null };
  /** The expression context without credentials. */
  context: Record<string, unknown>;
  credentials: Record<string, string>;
  notifier: Notifier;
  outboundFetch: typeof fetch;
  /** Epoch ms at which the step times out, if it has a timeout. */
  deadline?: number;
  /** Aborted when the run is cancelled while the step runs: a kind waiting on the outside gives up. */
  stop: AbortSignal;
  note(level: LogLevel, message: string): void;
  /** The step's row as claimed, when an earlier claim parked it (`waiting`). */
  prior?: ClaimedStep;
  attempt: number;
  /** Takes the oldest delivered event of that name no other step took (written with the step's outcome). */
  takeEvent(event: string): ClaimedEvent | undefined;
  /** The run's child runs as claimed. */
  children: ClaimedChild[];
  /** Child runs to create with the run's next flush. */
  startChildren(children: NewChildRun[]): void;
  /** Queues a notice for the run's thread with the run's next flush (the outbox delivers it). */
  notice(n: { kind: 'approval.requested'; approvalId: string }): void;
  /** For kinds that wait on Flowgate's own rows (approvals). */
  extra: KindExtras;
}

/** Services a few kinds need, supplied by the executor's owner. */
export interface KindExtras {
  approvals: import('../core/approvals/approval-service.js').ApprovalService;
  requestedBy: string;
  /** The key-value store (the `kv.*` plugins, in the run's own namespace). */
  kv: import('../core/kv/kv-store.js').KvStore;
  /** Project locks (`flow.lock`). */
  flowLocks: import('../core/locks/flow-locks.js').FlowLocks;
  /** Where the incident plugins send (`pagerduty.event`, `opsgenie.alert`). */
  incidentApis: import('../config.js').Config['incidentApis'];
  /** The configured doors' API clients (the `slack.*`, `github.*` and `azure_devops.*` plugins). */
  doors: import('../doors/clients.js').DoorClients;
  /** The pipelines of `cicd.run` steps: cicd-mode child runs, dispatched and cancelled as cicd runs are. */
  pipelines: import('../core/cicd/pipeline-runs.js').PipelineRuns;
  /** Validates a child run against the registry and its project (`RunService.prepare`). */
  prepareRun(input: import('../core/runs/run-service.js').StartRunInput): Promise<import('../db/entities/run.js').Run>;
}

/**
 * Thrown by a kind that has to wait: the step is written `waiting` (with what it waits for and
 * what it must remember) and the run released until `wakeAt`, or until a signal wakes it.
 */
export class Park {
  constructor(readonly wakeAt: number | null, readonly waitingFor: string, readonly runStatus: RunStatus, readonly output: unknown = null) {}
}

export type Kind = (c: KindCall) => Promise<unknown>;

export const log: Kind = async (c) => {
  const input = parseInput('log', render(c.step.with, c.context));
  c.note(input.level, input.message);
  return { message: input.message, level: input.level };
};

export const notify: Kind = async (c) => {
  const input = parseInput('notify', render(c.step.with, c.context));
  const outcome = await c.notifier.notify(c.run.callback, {
    event: 'run.message', runId: c.run.id, taskType: c.run.taskType, repositoryIdentifier: c.run.repositoryIdentifier, message: input.message,
  });
  c.note(outcome.delivered ? 'info' : 'warn', outcome.delivered ? `Notified: ${input.message}` : `Not delivered (${outcome.reason}): ${input.message}`);
  return { delivered: outcome.delivered, message: input.message, ...(outcome.reason ? { reason: outcome.reason } : {}) };
};

/** The same request as the DBOS engine's http.request kind (`core/net/http-call.ts`). */
export const httpRequest: Kind = async (c) => {
  const left = c.deadline === undefined ? Infinity : c.deadline - Date.now();
  const result = await callHttp(c.step, { context: c.context, credentials: c.credentials, fetch: c.outboundFetch, timeLeftMs: left, stop: c.stop });
  c.note(result.ok ? 'info' : 'error', result.line);
  if (!result.ok) throw new StepFailure('output' in result ? `HTTP ${result.status}: ${result.line}` : result.line, result.retryable);
  return result.output;
};

/** A durable sleep: the wake-up time is kept on the step row, so a re-claimed run wakes at the original time. */
export const sleepKind: Kind = async (c) => {
  const remembered = c.prior?.status === 'waiting' ? (c.prior.output as { until?: string; since?: string } | null) : null;
  let until: number;
  let since: number;
  if (remembered?.until) {
    until = Date.parse(remembered.until);
    since = remembered.since ? Date.parse(remembered.since) : until;
  } else {
    const input = parseInput('sleep', render(c.step.with, c.context));
    since = Date.now();
    until = input.until ? Date.parse(input.until) : since + (input.seconds ?? (input.minutes ?? 0) * 60) * 1000;
    c.note('info', `Sleeping until ${new Date(until).toISOString()}`);
  }
  if (c.deadline !== undefined && until > c.deadline) {
    if (Date.now() >= c.deadline) throw new StepFailure(`step timed out after ${c.step.timeout}s while sleeping`, false);
    until = c.deadline;
  }
  const at = (ms: number) => new Date(ms).toISOString();
  if (Date.now() < until) throw new Park(until, `time:${at(until)}`, 'waiting', { until: at(until), since: at(since) });
  // The same output as the previous engine's sleep.
  return { sleptMs: Math.max(0, until - since), until: at(until) };
};

/**
 * Opens the step's approval (once: the service answers the existing one for the same step) and
 * parks the run `suspended` until a decision signals it or the approval expires. The approval
 * row is the truth: every claim re-reads it.
 */
export const approvalKind: Kind = async (c) => {
  const { approvals } = c.extra;
  const waitKey = c.prior?.status === 'waiting' ? c.prior.waitingFor : null;
  let a;
  if (waitKey?.startsWith('approval:')) {
    // Read with the claim; a step without it (claimed before this release) reads it now.
    a = c.prior?.approval ? rowTo<Approval>(ApprovalSchema, c.prior.approval) : await approvals.get(waitKey.slice('approval:'.length));
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
    // Asked in the run's thread through the outbox, written with the step's park: never lost, never twice.
    c.notice({ kind: 'approval.requested', approvalId: a.id });
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

/**
 * Waits for an event delivered through `POST /api/v1/runs/{id}/events`: every delivery is a row
 * (an event that came before the step waits is there when it looks), and the step takes the
 * oldest one of its name. Its timeout is kept on the step row, so a re-claimed run keeps it.
 */
export const waitForEvent: Kind = async (c) => {
  const remembered = c.prior?.status === 'waiting' ? (c.prior.output as { event?: string; until?: string | null; since?: string } | null) : null;
  let event: string;
  let until: number | null;
  let since = Date.now();
  if (remembered?.event) {
    event = remembered.event;
    until = remembered.until ? Date.parse(remembered.until) : null;
    if (remembered.since) since = Date.parse(remembered.since);
  } else {
    const input = parseInput('wait_for_event', render(c.step.with, c.context));
    event = input.event;
    until = input.timeoutSeconds !== undefined ? Date.now() + input.timeoutSeconds * 1000 : null;
    if (c.deadline !== undefined && (until === null || until > c.deadline)) until = c.deadline;
    c.note('info', `Waiting for event "${event}"`);
  }
  const got = c.takeEvent(event);
  if (got) {
    c.note('info', `Event "${event}" received from ${got.sentBy}`);
    return got.payload ?? null;
  }
  if (until !== null && Date.now() >= until) throw new StepFailure(`timed out after ${Math.round((until - since) / 1000)}s waiting for event "${event}"`);
  throw new Park(until, eventTopic(event), 'waiting', { event, until: until === null ? null : new Date(until).toISOString(), since: new Date(since).toISOString() });
};

/** How often a run waiting for child runs looks at them even without a wake-up. */
const CHILD_RECHECK_MS = 5_000;

interface ChildWait { children: { id: string; taskType: string; item?: unknown }[]; until: string | null }

function renderOrFail(value: unknown, ctx: Record<string, unknown>): unknown {
  try {
    return render(value, ctx);
  } catch (err) {
    throw new StepFailure(messageOf(err), false);
  }
}

/**
 * Starts child runs (one, or one per `forEach` item) with the run's next flush and parks until
 * they end; each child's end wakes the run. Child ids derive from the run, the step, the attempt
 * and the index, so a re-claimed run never creates them twice.
 */
export const flowKind: Kind = async (c) => {
  const remembered = c.prior?.status === 'waiting' ? (c.prior.output as ChildWait | null) : null;
  let wait: ChildWait;
  if (remembered?.children) {
    wait = remembered;
  } else {
    const head = parseInput('flow', renderOrFail({ ...c.step.with, payload: {} }, c.context));
    const items = head.forEach ?? [undefined];
    const rows: NewChildRun[] = [];
    wait = { children: [], until: c.deadline === undefined ? null : new Date(c.deadline).toISOString() };
    for (const [i, item] of items.entries()) {
      const { payload } = parseInput('flow', renderOrFail({ type: head.type, payload: c.step.with.payload ?? {} }, { ...c.context, item }));
      let child;
      try {
        child = await c.extra.prepareRun({
          id: idFrom(`${c.run.id}/${c.step.ref}/${c.attempt}/${i}`), payload: { ...payload, id: head.type }, repositoryIdentifier: c.run.repositoryIdentifier,
          triggeredBy: c.run.triggeredBy, requestedBy: c.extra.requestedBy, callback: c.run.callback, parentRunId: c.run.id,
        });
      } catch (err) {
        if (err instanceof AppError) throw new StepFailure(`cannot start child flow ${head.type}: ${err.message}${err.details.length ? ` (${err.details.map((d) => `${d.field}: ${d.message}`).join('; ')})` : ''}`, false);
        throw err;
      }
      rows.push({
        id: child.id, engineRunId: child.engineRunId, taskType: child.taskType, requestedTaskType: child.requestedTaskType ?? null, flowPath: child.flowPath,
        category: child.category, executionMode: child.executionMode, repositoryIdentifier: child.repositoryIdentifier, payload: child.payload,
        definition: child.definition, triggeredBy: child.triggeredBy, requestedBy: child.requestedBy ?? null, callback: child.callback ?? null,
        maxParallelSteps: child.maxParallelSteps ?? 0, expiresAt: child.expiresAt?.toISOString() ?? null,
      });
      wait.children.push({ id: child.id, taskType: child.taskType, ...(item !== undefined ? { item } : {}) });
      c.note('info', `Started child run ${child.id} (${child.taskType}${item !== undefined ? ` for ${JSON.stringify(item)}` : ''})`);
    }
    c.startChildren(rows);
  }
  const states = wait.children.map((w) => ({ ...w, run: c.children.find((k) => k.id === w.id) }));
  const until = wait.until ? Date.parse(wait.until) : null;
  if (states.some((s) => !s.run || !isTerminalRun(s.run.status))) {
    if (until !== null && Date.now() >= until) throw new StepFailure(`child runs did not finish within the step timeout`);
    // Each child's end wakes the run; looking again every few seconds as well bounds what a lost
    // wake-up could cost (one claim and one flush per waiting parent per interval).
    throw new Park(Math.min(until ?? Infinity, Date.now() + CHILD_RECHECK_MS), `children:${wait.children.length}`, 'waiting', wait);
  }
  for (const s of states) c.note(s.run!.status === 'completed' ? 'info' : 'error', `Child run ${s.id} (${s.taskType}) ${s.run!.status}`);
  const failed = states.filter((s) => s.run!.status !== 'completed');
  if (failed.length) throw new StepFailure(failed.map((f) => `child run ${f.id} (${f.taskType}) ended ${f.run!.status}${f.run!.error ? `: ${f.run!.error}` : ''}`).join('; '), false);
  if (c.step.with.forEach === undefined) return { runId: states[0].id, ...states[0].run!.result };
  return { children: states.map((s) => ({ runId: s.id, item: s.item, status: s.run!.status, result: s.run!.result })) };
};

