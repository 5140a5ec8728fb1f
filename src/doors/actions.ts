import type { Services } from '../container.js';
import type { Callback, Run, WorkItemRef } from '../db/entities/run.js';
import type { Person } from '../core/approvals/approval-rules.js';
import type { ThreadRef } from '../core/approvals/thread-lookup.js';
import type { Approval } from '../db/entities/approval.js';
import { idFrom } from '../core/ids.js';
import { isTerminalRun } from '../core/status.js';
import { AppError } from '../errors.js';
import { coerceParams, describeParameters, suggest } from './commands.js';

/** What a door gets back: a run, or a message to show the person (never an exception). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; text: string };

/**
 * Starts a run for a person from a chat command. The run id derives from the delivery, so a
 * redelivered or replayed command gets the run it already started.
 */
export async function startRunForPerson(s: Services, input: {
  flowType: string; params: Record<string, string>; repositoryIdentifier: string; person: Person;
  callback: Callback; workItemRef?: WorkItemRef | null; deliveryId: string; door: string;
  /** Check everything and phrase every problem as a start would, but store and start nothing. */
  dryRun?: boolean;
}): Promise<Outcome<Run>> {
  const def = s.registry.find(input.flowType);
  if (!def) {
    const known = s.registry.listFor([input.repositoryIdentifier]).map((d) => d.id);
    const close = suggest(input.flowType, known);
    return { ok: false, text: `Unknown flow type "${input.flowType}".${close.length ? ` Did you mean ${close.map((c) => `\`${c}\``).join(', ')}?` : ''} Known: ${known.join(', ')}.` };
  }
  const { params, problems } = coerceParams(def, input.params);
  if (problems.length) return { ok: false, text: `Invalid parameters for ${def.id}:\n${problems.join('\n')}\n\nParameters of ${def.id}:\n${describeParameters(def)}` };
  try {
    const request = {
      id: idFrom(`${input.door}:${input.deliveryId}`), payload: { ...params, id: def.id }, repositoryIdentifier: input.repositoryIdentifier,
      triggeredBy: input.person.email, callback: input.callback, workItemRef: input.workItemRef ?? null,
    };
    const run = input.dryRun
      ? await s.runs.prepare(request, { dispatchCicd: true })
      : await s.runs.start(request, { name: input.person.email, door: input.door });
    return { ok: true, value: run };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) {
      const details = err.details.map((d) => `${d.field.replace(/^payload\./, '')}: ${d.message}`).join('\n');
      return { ok: false, text: `${err.message}${details ? `:\n${details}` : ''}${err.details.some((d) => d.field.startsWith('payload.') && d.field !== 'payload.id') ? `\n\nParameters of ${def.id}:\n${describeParameters(def)}` : ''}` };
    }
    throw err;
  }
}

/** A short status of a run for a chat reply. */
export function describeRun(run: Run): string {
  const took = run.finishedAt && run.startedAt ? ` in ${formatDuration(run.finishedAt.getTime() - run.startedAt.getTime())}` : '';
  return `${run.taskType} run ${run.id}: ${run.status}${isTerminalRun(run.status) ? took : ''}${run.error ? ` (${run.error})` : ''}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

/**
 * Cancels a run for a person. Who may is the core's rule (`RunService.cancel`), the same as over
 * REST; a refusal comes back as text for the person (and the core audited it).
 */
export async function cancelForPerson(s: Services, run: Run, person: Person, door: string): Promise<Outcome<string[]>> {
  try {
    return { ok: true, value: await s.runs.cancel(run, { person, door }) };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) return { ok: false, text: err.message };
    throw err;
  }
}

/**
 * Pauses, resumes or retries a run for a person (`RunControl`, the same rule and states as over
 * REST); a refusal comes back as text for the person. A retry is a new run in the same thread.
 */
export async function controlForPerson(s: Services, run: Run, person: Person, door: string, verb: 'pause' | 'resume' | 'retry'): Promise<Outcome<string>> {
  const who = { person, door };
  try {
    if (verb === 'retry') {
      const next = await s.control.retryRun(run, who);
      return { ok: true, value: `Retrying ${run.taskType} run ${run.id} as run ${next.id}: its completed steps are kept, the others run again.` };
    }
    const now = verb === 'pause' ? await s.control.pause(run, who) : await s.control.resume(run, who);
    return {
      ok: true,
      value: verb === 'pause' ? `Paused ${now.taskType} run ${now.id}: running steps finish, nothing new starts until it is resumed.` : `Resumed ${now.taskType} run ${now.id}.`,
    };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) return { ok: false, text: err.message };
    throw err;
  }
}

/** Decides an approval for a person; refusals come back as text for a private reply. */
export async function decideForPerson(s: Services, approvalId: string, person: Person, verdict: 'approve' | 'reject', reason: string | null, door: string): Promise<Outcome<string>> {
  try {
    const a = await s.approvals.decide(approvalId, person, verdict, reason, door);
    return { ok: true, value: a.status };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) return { ok: false, text: err.message };
    throw err;
  }
}

/** The approval a thread command means, or why there is none to decide (nothing is decided then). */
export type ThreadTarget = { ok: true; approval: Approval } | { ok: false; why: 'none' | 'unknown' | 'ambiguous'; text: string };

/**
 * Which approval `approve` / `reject` in a thread decide: the one named by id (of this thread's
 * projects only), else the only pending one. With several pending and none named the answer
 * lists them — `usage(id)` phrases the command in the door's own words.
 */
export async function approvalOfThread(s: Services, thread: ThreadRef, approvalId: string | undefined, usage: (id: string) => string): Promise<ThreadTarget> {
  const pick = await s.approvals.pickInThread(thread, approvalId);
  switch (pick.kind) {
    case 'one':
      return { ok: true, approval: pick.approval };
    case 'none':
      return { ok: false, why: 'none', text: 'There is no approval request in this thread.' };
    case 'unknown':
      return { ok: false, why: 'unknown', text: `Approval ${approvalId} is not a request of this thread.${pick.pending.length ? ` Pending here:\n${listPending(pick.pending, usage)}` : ''}` };
    case 'ambiguous':
      return { ok: false, why: 'ambiguous', text: `This thread has ${pick.pending.length} pending approval requests, so nothing was decided. Name the one you mean:\n${listPending(pick.pending, usage)}` };
  }
}

const listPending = (pending: Approval[], usage: (id: string) => string) =>
  pending.map((a) => `- ${usage(a.id)} — ${a.message ?? `step ${a.stepRef ?? a.taskId ?? '?'}`}${a.runId ? ` (run ${a.runId})` : ''}, requested by ${a.requestedBy}`).join('\n');
