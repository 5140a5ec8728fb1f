import type { Services } from '../container.js';
import type { Callback, Run, WorkItemRef } from '../db/entities/run.js';
import type { Person } from '../core/approvals/approval-rules.js';
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
    const close = suggest(input.flowType, s.registry.list().map((d) => d.id));
    return { ok: false, text: `Unknown flow type "${input.flowType}".${close.length ? ` Did you mean ${close.map((c) => `\`${c}\``).join(', ')}?` : ''} Known: ${s.registry.list().map((d) => d.id).join(', ')}.` };
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

/** Cancels a run for a person: only runs of projects they own or are members of. */
export async function cancelForPerson(s: Services, run: Run, person: Person, door: string): Promise<Outcome<string[]>> {
  const project = await s.projects.find(run.repositoryIdentifier);
  const email = person.email.toLowerCase();
  const allowed = email === run.triggeredBy.toLowerCase() || project?.owners.includes(email) || project?.members.includes(email);
  if (!allowed) return { ok: false, text: `${email} may not cancel runs of ${run.repositoryIdentifier}: only its owners, members or the person who started it can.` };
  try {
    return { ok: true, value: await s.runs.cancel(run, { name: email, door }) };
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
