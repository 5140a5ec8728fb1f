import { expressionScope } from '../core/expressions/scope.js';
import type { Project } from '../db/entities/project.js';
import type { NewLogLine } from '../core/logs/run-logs.js';
import type { Notifier } from '../core/notify/notifier.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import type { StepStatus } from '../core/status.js';
import { evaluateCondition } from '../core/expressions/expressions.js';
import { render } from '../core/expressions/templates.js';
import { cancel, planNext, settle, summarize, type GraphState } from '../engine/graph-state.js';
import type { StepOutcome } from '../engine/run-outcome.js';
import { messageOf, StepFailure } from '../engine/step-failure.js';
import type { LeasedRun } from './claim.js';
import type { NewChildRun, RunFlush, StepAttemptEntry, StepWrite } from './flush.js';
import { Park, type KindExtras } from './kinds.js';
import { pluginFor } from '../plugins/catalogue.js';
import { CredentialUnavailable } from '../core/credentials/keyring.js';

export interface WorkDeps {
  notifier: Notifier;
  outboundFetch: typeof fetch;
  credentials: Record<string, string>;
  /**
   * The credentials a step runs with (env and the stored ones its input names), decrypted when it
   * runs; without it, `credentials` alone.
   */
  stepCredentials?(repositoryIdentifier: string, stepInput: unknown): Promise<Record<string, string>>;
  project(repositoryIdentifier: string): Promise<Project | null>;
  extras: Omit<KindExtras, 'requestedBy'>;
  /** Writes what the run has so far without giving up its lease; false when the fence refused it. */
  checkpoint(f: RunFlush): Promise<boolean>;
  /** Tells the run to hold: paused, asked to stop, or wanted by a control action. */
  control: RunSignals;
}

/**
 * How a run being worked on hears that it must hold: nothing new starts, running steps finish,
 * and the run is released (its executor hears of it by NOTIFY, or in the answer to a flush).
 */
export interface RunSignals {
  readonly held: Promise<void>;
  isHeld(): boolean;
  /** Aborted when the run was cancelled outright (no compensation): steps in flight give up. */
  readonly stopped: AbortSignal;
}

/** The run's lease was lost (cancelled, or taken over after expiry): its work is dropped. */
export class LeaseLost extends Error {
  constructor(runId: string) {
    super(`lease on run ${runId} lost`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DATABASE_OUTAGE_WAIT_MS = 120_000;

/**
 * An error that says Flowgate's database could not be reached (connection refused or lost, the
 * server shutting down or starting), as kinds that read or write it raise it — directly or wrapped
 * by the ORM. Kinds that call out (HTTP) turn their own failures into StepFailure first.
 */
export function databaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e instanceof StepFailure) return false;
    const code = typeof e.code === 'string' ? e.code : '';
    if (code.startsWith('08') || /^57P0[1-3]$/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(code)) return true;
    // The Unix socket of a restarting server is gone for a moment.
    if (code === 'ENOENT' && typeof e.message === 'string' && /^connect ENOENT .*\.s\.PGSQL\.\d+$/.test(e.message)) return true;
    if (typeof e.message === 'string' && /database system is (shutting down|starting up)|Connection terminated/i.test(e.message)) return true;
  }
  return false;
}

/**
 * Advances one leased run as far as it goes, in memory, and returns its final write (the run's
 * end, lease released). The run's state is rebuilt from its step rows only, so whichever executor
 * claims it continues where the last flush left it; a flushed step never runs again. A step with
 * effects outside Flowgate starts only once the outcomes it depends on are committed.
 */
export async function workRun(run: LeasedRun, d: WorkDeps): Promise<RunFlush> {
  const steps = run.definition.steps;
  const state: GraphState = {
    steps, status: {}, failures: [], maxParallel: run.definition.maxParallelSteps,
    branches: (step, output, all) => pluginFor(step.type)?.branches?.(step, output, all) ?? [],
  };
  const kindOf = (ref: string) => steps.find((x) => x.ref === ref)?.type;
  const outputs: Record<string, { status: StepStatus; output: unknown }> = {};
  const known = (ref: string) => steps.some((x) => x.ref === ref);
  // Steps cancelled while they ran (a failure or a cancel aborted the run) may have left an
  // effect: an onFailure: compensate step among them is compensated on every later claim too.
  const interrupted = run.steps.filter((s) => s.status === 'cancelled' && s.attempt > 0 && known(s.ref)).map((s) => s.ref);
  if (interrupted.length) state.interrupted = interrupted;
  for (const ref of interrupted) state.status[ref] = 'cancelled';
  for (const s of run.steps) {
    outputs[s.ref] = { status: s.status, output: s.output ?? null };
    // Blocked and cancelled rows are derived again by planNext; only real outcomes are replayed.
    // A step skipped or force-completed through run control is an outcome too.
    const real = s.status === 'completed' || s.status === 'failed' || (s.status === 'skipped' && (s.error === null || s.overriddenBy !== null));
    if (!real || !known(s.ref)) continue;
    state.status[s.ref] = 'running';
    settle(state, { ref: s.ref, status: s.status as StepOutcome['status'], output: s.output ?? null, error: s.error });
    // A skipped approval was rejected: what it gates does not run (skipped in turn), and the run goes on.
    if (s.status === 'skipped' && s.overriddenBy !== null && kindOf(s.ref) === 'approval') state.status[s.ref] = 'blocked';
  }
  const expiresAt = run.expiresAt ? Date.parse(run.expiresAt) : null;
  const timeoutReason = 'timed out: the run passed its expiry' + (expiresAt ? ` (${new Date(expiresAt).toISOString()})` : '');

  type Pending = { steps: StepWrite[]; lines: NewLogLine[]; children: NewChildRun[]; consumed: { id: string; ref: string }[]; notices: NonNullable<RunFlush['notices']> };
  const empty = (): Pending => ({ steps: [], lines: [], children: [], consumed: [], notices: [] });
  let pending: Pending = empty();
  const unflushed = new Set<string>();
  let flushing: Promise<void> | null = null;
  const base = (): RunFlush => ({
    id: run.id, token: run.token, seenSignal: run.signalSeq, steps: [], lines: [], release: false, wakeAt: null,
    parentRunId: run.parentRunId, cancelSeen: run.cancelRequested !== null,
  });
  const record = (w: StepWrite, lines: NewLogLine[]) => {
    pending.steps.push(w);
    pending.lines.push(...lines);
    outputs[w.ref] = { status: w.status, output: w.output ?? null };
    unflushed.add(w.ref);
  };
  /** Commits the run's pending writes before an effect that depends on them. */
  const commit = async (refs: string[]) => {
    while (refs.some((r) => unflushed.has(r))) {
      if (!flushing) {
        const taken = pending;
        const refsTaken = taken.steps.map((s) => s.ref);
        pending = empty();
        flushing = d.checkpoint({ ...base(), ...taken }).then((ok) => {
          if (!ok) throw new LeaseLost(run.id);
          for (const r of refsTaken) unflushed.delete(r);
        }).finally(() => { flushing = null; });
      }
      await flushing;
    }
  };

  // An event is taken by one step; a step re-run after a lost flush takes the one it took before.
  const taken = new Set<string>();
  const takeEvent = (ref: string) => (name: string) => {
    const open = run.events.filter((e) => e.event === name && !taken.has(e.id) && (e.consumedBy === null || e.consumedBy === ref));
    const e = open.find((x) => x.consumedBy === ref) ?? open[0];
    if (e) {
      taken.add(e.id);
      pending.consumed.push({ id: e.id, ref });
    }
    return e;
  };

  let project: Project | null | undefined;
  const context = async () => {
    if (project === undefined) project = await d.project(run.repositoryIdentifier);
    return expressionScope({
      payload: run.payload,
      steps: { ...outputs },
      run: { id: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, triggeredBy: run.triggeredBy, parentRunId: run.parentRunId },
      project: project ? { repositoryIdentifier: project.repositoryIdentifier, provider: project.provider, owners: project.owners, members: project.members } : {},
      credentials: {},
      trigger: run.trigger,
    });
  };

  // Stored values this claim has decrypted: later steps redact them too, as every step redacts the env's.
  let decrypted: Record<string, string> = {};
  /** Never kept: passed to the kind for this attempt only. A stored one that cannot be used fails the step for good. */
  const credentialsOf = async (step: StepDefinition): Promise<Record<string, string>> => {
    if (!d.stepCredentials) return d.credentials;
    try {
      decrypted = { ...decrypted, ...(await d.stepCredentials(run.repositoryIdentifier, step.with)) };
      return decrypted;
    } catch (err) {
      if (err instanceof CredentialUnavailable) throw new StepFailure(err.message, false);
      throw err;
    }
  };

  type Result = StepOutcome | { ref: string; parked: Park } | { ref: string; deferred: true };
  const execute = async (step: StepDefinition): Promise<Result> => {
    const lines: NewLogLine[] = [];
    const line = (level: NewLogLine['level'], message: string) => lines.push({ level, source: `step:${step.ref}`, group: step.type, message });
    const depsRequired = step.dependsOn.length;
    const prior = run.steps.find((s) => s.ref === step.ref && s.status === 'waiting');
    // Each attempt of this claim, oldest first (one re-claimed after parking continues its last).
    const history: StepAttemptEntry[] = [];
    const closeAttempt = (status: StepAttemptEntry['status'], error: string | null) => {
      const open = history.at(-1);
      if (open && open.status === 'running') Object.assign(open, { status, error, finishedAt: status === 'waiting' ? null : new Date().toISOString() });
    };
    const finish = (o: StepOutcome, attempt: number): StepOutcome => {
      closeAttempt(o.status, o.error);
      record({ ref: step.ref, kind: step.type, status: o.status, attempt, depsRequired, output: o.output, error: o.error, attempts: history }, lines);
      return o;
    };
    try {
      if (step.if) {
        let verdict: boolean;
        try {
          verdict = evaluateCondition(step.if, await context());
        } catch (err) {
          return finish({ ref: step.ref, status: 'failed', output: null, error: `condition failed: ${messageOf(err)}` }, 0);
        }
        if (!verdict) {
          line('info', `Skipped: condition "${step.if}" is false`);
          return finish({ ref: step.ref, status: 'skipped', output: null, error: null }, 0);
        }
      }
      const plugin = pluginFor(step.type);
      // A definition stored by a later release may name a kind this one does not have.
      if (!plugin) return finish({ ref: step.ref, status: 'failed', output: null, error: `unknown plugin "${step.type}" in this Flowgate version` }, 0);
      const kind = plugin.run;
      if (plugin.effectful) await commit(step.dependsOn);
      // Held while its dependencies were committed: it starts after the run is released and claimed again.
      if (d.control.isHeld()) return { ref: step.ref, deferred: true };
      const attempts = (step.retry?.attempts ?? 0) + 1;
      const deadline = step.timeout ? Date.now() + step.timeout * 1000 : undefined;
      // How long an outage of Flowgate's database is waited out inside the step (see databaseUnavailable).
      const outageGiveUp = Date.now() + DATABASE_OUTAGE_WAIT_MS;
      let logged = 0;
      // A step run again through run control (reset to pending) continues its attempt count.
      const base = prior ? 0 : (run.steps.find((s) => s.ref === step.ref && s.status === 'pending')?.attempt ?? 0);
      for (let attempt = prior ? Math.max(1, prior.attempt) : base + 1; ; attempt++) {
        // A parked step resumes: its start was logged when it first ran.
        // Once per attempt: an outage waited out tries the same attempt again without a second line.
        if ((!prior || attempt > prior.attempt) && attempt > logged) line('info', `Step ${step.ref} (${step.type}) started${attempt > 1 ? `, attempt ${attempt}${base === 0 ? ` of ${attempts}` : ''}` : ''}`);
        logged = Math.max(logged, attempt);
        history.push({ attempt, status: 'running', error: null, startedAt: new Date().toISOString(), finishedAt: null });
        try {
          const output = await kind({
            step, run, context: await context(), credentials: await credentialsOf(step), notifier: d.notifier, outboundFetch: d.outboundFetch, deadline, note: line, stop: d.control.stopped,
            prior: attempt === prior?.attempt ? prior : undefined, extra: { ...d.extras, requestedBy: run.requestedBy }, attempt,
            takeEvent: takeEvent(step.ref), children: run.children, startChildren: (rows) => pending.children.push(...rows),
            notice: (n) => pending.notices.push(n),
          });
          line('info', `Step ${step.ref} completed`);
          return finish({ ref: step.ref, status: 'completed', output: output ?? null, error: null }, attempt);
        } catch (err) {
          if (err instanceof Park) {
            closeAttempt('waiting', null);
            record({ ref: step.ref, kind: step.type, status: 'waiting', attempt, depsRequired, output: err.output, error: null, waitingFor: err.waitingFor, attempts: history }, lines);
            return { ref: step.ref, parked: err };
          }
          // Flowgate's own database went away under a kind that uses it (an approval, a child run):
          // not the step's failure. The same attempt is tried again once the database answers.
          if (databaseUnavailable(err) && Date.now() < outageGiveUp) {
            history.pop();
            attempt--;
            await sleep(500);
            continue;
          }
          const retryable = !(err instanceof StepFailure) || err.retryable;
          const reason = messageOf(err);
          const timedOut = deadline !== undefined && Date.now() >= deadline;
          const canRetry = retryable && !timedOut && attempt - base < attempts;
          const backoff = canRetry ? step.retry!.backoffSeconds * step.retry!.factor ** (attempt - base - 1) * 1000 : 0;
          line('error', `Step ${step.ref} failed${timedOut ? ' (timed out)' : ''}: ${reason}${canRetry ? `; retrying in ${backoff / 1000}s` : ''}`);
          if (!canRetry) return finish({ ref: step.ref, status: 'failed', output: null, error: timedOut ? `timed out after ${step.timeout}s: ${reason}` : reason }, attempt);
          closeAttempt('failed', reason);
          await sleep(deadline !== undefined ? Math.min(backoff, Math.max(0, deadline - Date.now())) : backoff);
        }
      }
    } catch (err) {
      if (err instanceof LeaseLost) throw err;
      return finish({ ref: step.ref, status: 'failed', output: null, error: `internal error: ${messageOf(err)}` }, 0);
    }
  };

  const running = new Map<string, Promise<Result>>();
  const parks: Park[] = [];
  /** Records running steps as cancelled (attempt ≥ 1: a later claim knows they were interrupted, not just never run). */
  const interrupt = (refs: string[], why: string) => {
    for (const ref of refs) {
      // Still in flight: its late outcome is ignored (settle skips a step no longer running).
      running.delete(ref);
      const s = steps.find((x) => x.ref === ref)!;
      const attempt = Math.max(1, run.steps.find((x) => x.ref === ref)?.attempt ?? 1);
      record({ ref, kind: s.type, status: 'cancelled', attempt, depsRequired: s.dependsOn.length, output: null, error: `cancelled: ${why}` }, []);
    }
  };
  const expired = expiresAt !== null && Date.now() >= expiresAt;
  if (run.cancelRequested !== null || expired) {
    // Asked to stop, or out of time: parked steps are interrupted, and the compensations of what ran come next.
    for (const s of run.steps) if (s.status === 'waiting' && known(s.ref)) state.status[s.ref] = 'running';
    state.timedOut = run.cancelRequested === null;
    interrupt(cancel(state, run.cancelRequested ?? timeoutReason), run.cancelRequested ?? timeoutReason);
  }
  const HOLD = Symbol('hold');
  const EXPIRED = Symbol('expired');
  let expiry: NodeJS.Timeout | undefined;
  const expiring = expiresAt === null || state.aborted ? null : new Promise<typeof EXPIRED>((resolve) => {
    expiry = setTimeout(() => resolve(EXPIRED), Math.max(0, expiresAt - Date.now()));
  });
  let finished = false;
  try {
    for (;;) {
      state.hold = state.hold || d.control.isHeld();
      const plan = planNext(state);
      finished = plan.finished;
      for (const b of plan.block) {
        record({ ref: b.ref, kind: b.kind, status: b.status, attempt: 0, depsRequired: b.depsRequired, output: null, error: b.reason }, []);
      }
      for (const s of plan.start) {
        const p = execute(s);
        // A step dropped from the race (cancelled) must not surface as an unhandled rejection.
        p.catch(() => undefined);
        running.set(s.ref, p);
      }
      if (!running.size) break;
      const signals: Promise<Result | typeof HOLD | typeof EXPIRED>[] = [...running.values()];
      if (!state.hold) signals.push(d.control.held.then(() => HOLD));
      if (expiring && !state.aborted) signals.push(expiring);
      const outcome = await Promise.race(signals);
      if (outcome === HOLD) continue;
      if (outcome === EXPIRED) {
        state.timedOut = true;
        interrupt(cancel(state, timeoutReason), timeoutReason);
        continue;
      }
      running.delete(outcome.ref);
      // Not started after all (the run holds): it is decided again by a later claim.
      if ('deferred' in outcome) {
        delete state.status[outcome.ref];
        continue;
      }
      // A parked step stays `running` in the graph: nothing waiting on it starts until a later claim.
      if ('parked' in outcome) {
        parks.push(outcome.parked);
        continue;
      }
      interrupt(settle(state, outcome), `step ${outcome.ref} failed`);
    }
  } finally {
    clearTimeout(expiry);
  }
  if (flushing) await flushing;
  if (!finished) {
    // Parked, or held with steps still to start: released until a timer, a signal, a resume or the control action wakes it.
    const wake = Math.min(...parks.map((p) => p.wakeAt ?? Infinity), state.hold ? Date.now() : Infinity, expiresAt ?? Infinity);
    return {
      ...base(), ...pending, release: true, wakeAt: Number.isFinite(wake) ? new Date(wake).toISOString() : null,
      parked: parks.some((p) => p.runStatus === 'suspended') ? 'suspended' : parks.length ? 'waiting' : undefined,
    };
  }

  const summary = summarize(state);
  let status = summary.status;
  let error = summary.error;
  let result: Record<string, unknown>;
  if (run.definition.outputs && status !== 'failed') {
    try {
      result = render(run.definition.outputs, await context()) as Record<string, unknown>;
    } catch (err) {
      result = {};
      status = 'failed';
      error = `outputs: ${messageOf(err)}`;
    }
  } else {
    result = { steps: Object.fromEntries(Object.entries(outputs).filter(([, o]) => o.status === 'completed').map(([k, o]) => [k, o.output])) };
  }
  // Children of a flow step the end cancelled were never created: they must not start now; nor
  // is an approval asked that the end makes moot (it is closed as stale).
  pending.children = [];
  pending.notices = [];
  pending.lines.push({ level: status === 'completed' ? 'info' : 'error', source: 'engine', group: 'run', message: `Run ${status}${error ? `: ${error}` : ''}` });
  return { ...base(), ...pending, end: { status, error, result }, audit: { action: `run.${status}`, details: error ? { error } : undefined }, release: true };
}
