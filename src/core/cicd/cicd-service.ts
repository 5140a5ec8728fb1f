import type { Run } from '../../db/entities/run.js';
import { redact } from '../secrets.js';
import { AppError, badRequest, conflict, engineUnavailable, notFound } from '../../errors.js';
import { SYSTEM, type Actor, type AuditLog } from '../audit/audit-log.js';
import type { TokenService } from '../identity/tokens.js';
import type { RunLogs, NewLogLine } from '../logs/run-logs.js';
import type { Notifier } from '../notify/notifier.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import type { RunStore } from '../runs/run-store.js';
import { isTerminalRun, type RunStatus } from '../status.js';
import type { CicdStore, StatusReport } from './cicd-store.js';
import { DispatchRefused, type CicdDispatchers, type CicdProvider, type CicdTarget, type DispatchResult } from './dispatcher.js';
import { endOf, identityProblem, reportMatches, type PipelineRunFacts } from './pipeline-check.js';

const ENGINE: Actor = SYSTEM;
/** Providers whose execution token others can read (GitHub Actions inputs): their reports are checked against the provider's API. */
const VERIFIED_PROVIDERS: ReadonlySet<CicdProvider> = new Set<CicdProvider>(['github-actions']);
/** A workflow reports from inside its run, which concludes seconds later: look again then. */
const SETTLE_DELAYS_MS = [5_000, 20_000];
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What the core needs from the durable engine for cicd runs (src/engine/cicd-dispatch.ts). */
export interface CicdEngine {
  /** Durably starts the run's dispatch workflow (workflow id: the run's engine run id). */
  startDispatch(run: { id: string; engineRunId: string }): Promise<void>;
  /** Durably tells the run's callback destination that it finished; once per run. */
  announceFinished(run: { id: string; engineRunId: string }): Promise<void>;
}

export interface CicdDeps {
  dispatchers: CicdDispatchers;
  store: RunStore;
  cicdStore: CicdStore;
  tokens: TokenService;
  logs: RunLogs;
  audit: AuditLog;
  notifier: Notifier;
  engine: CicdEngine;
}

export interface CicdOptions {
  credentials: Record<string, string>;
  /**
   * The credentials a target's templates name, for a run of this project: the environment's,
   * then the stored ones (global, the project's), as a step resolves them. Without it: the environment's.
   */
  credentialsFor?(repositoryIdentifier: string, target: CicdTarget): Promise<Record<string, string>>;
  /** FLOWGATE_PUBLIC_URL: pipelines report to `<publicUrl>/sfp/api/flows/executions/<id>/status`. */
  publicUrl: string;
  tokenTtlHours: number;
  runFinished(status: string): void;
}

/** How a report was taken: `pending` names a final status held until the pipeline run concludes. */
export interface ReportAnswer {
  status: RunStatus;
  changed: boolean;
  pending?: StatusReport['status'];
}

/** One dispatch attempt, as checkpointed by the engine: never the token. */
export type AttemptOutcome =
  | ({ state: 'dispatched'; tokenId: string } & DispatchResult)
  /** The run ended (cancelled) or vanished before it was dispatched: stop trying. */
  | { state: 'ended'; status: RunStatus | null }
  | { state: 'failed'; final: boolean; error: string };

/**
 * CI/CD execution mode: a cicd run is handed to its provider's pipeline with a per-execution token;
 * the pipeline reports back through `report`. Every rule here is shared by every door.
 */
export class CicdService {
  constructor(private readonly d: CicdDeps, private readonly options: CicdOptions) {}

  /** The credentials a dispatch to `target` uses (its `url` may name stored ones); a missing one is the caller's problem. */
  async credentialsOf(repositoryIdentifier: string, target: CicdTarget): Promise<Record<string, string>> {
    return this.options.credentialsFor ? this.options.credentialsFor(repositoryIdentifier, target) : this.options.credentials;
  }

  /** Why this server cannot dispatch to the target for a run of this project, or undefined. */
  async dispatchProblem(repositoryIdentifier: string, target: CicdTarget): Promise<string | undefined> {
    const dispatcher = this.d.dispatchers.for(target.provider);
    if (!dispatcher) return `no ${target.provider} dispatcher is configured on this server`;
    try {
      return dispatcher.problem(target, await this.credentialsOf(repositoryIdentifier, target));
    } catch (err) {
      return messageOf(err);
    }
  }

  /** Refuses (400) a cicd flow type this server cannot dispatch for the project: no dispatcher for its provider, or not configured. */
  async requireDispatchable(def: FlowDefinition, repositoryIdentifier: string): Promise<void> {
    const target = def.cicd;
    if (!target) throw badRequest(`Flow type "${def.id}" runs in cicd mode but has no cicd target`);
    const dispatcher = this.d.dispatchers.for(target.provider);
    if (!dispatcher)
      throw badRequest(`Flow type "${def.id}" runs in cicd mode on ${target.provider}; no ${target.provider} dispatcher is configured on this server`,
        [{ field: 'payload.id', message: `cicd flow type on ${target.provider}, which this server cannot dispatch to`, location: 'body' }]);
    const problem = await this.dispatchProblem(repositoryIdentifier, target);
    if (problem)
      throw badRequest(`Flow type "${def.id}" cannot be dispatched to its ${target.provider} pipeline: ${problem}`,
        [{ field: 'payload.id', message: `cicd dispatch to ${target.provider} is not possible: ${problem}`, location: 'body' }]);
  }

  async start(run: Run): Promise<void> {
    try {
      await this.d.engine.startDispatch(run);
    } catch (err) {
      throw err instanceof AppError ? err : engineUnavailable(`Flow engine unavailable: ${messageOf(err).split('\n')[0]}`);
    }
  }

  /** Starts the dispatch of a committed run whose dispatch never started (the orphan sweep); idempotent per run. */
  async dispatchOrphan(runId: string): Promise<void> {
    const run = await this.d.store.findById(runId);
    if (run && run.status === 'queued') await this.start(run);
  }

  statusUrl(runId: string): string {
    return `${this.options.publicUrl.replace(/\/+$/, '')}/sfp/api/flows/executions/${runId}/status`;
  }

  /**
   * One dispatch: creates a fresh execution token and hands it with the run to the provider. The
   * engine runs this as one step, so the token exists only in this call; the outcome holds no secret.
   */
  async attemptDispatch(runId: string): Promise<AttemptOutcome> {
    const run = await this.d.store.findById(runId, true);
    if (!run || isTerminalRun(run.status)) return { state: 'ended', status: run?.status ?? null };
    const target = run.definition.cicd;
    const dispatcher = target && this.d.dispatchers.for(target.provider);
    if (!target || !dispatcher) return { state: 'failed', final: true, error: `no ${target?.provider ?? 'cicd'} dispatcher is configured on this server` };
    let credentials: Record<string, string>;
    try {
      credentials = await this.credentialsOf(run.repositoryIdentifier, target);
    } catch (err) {
      return { state: 'failed', final: true, error: messageOf(err) };
    }
    const token = await this.d.tokens.createForRun(run, this.options.tokenTtlHours, ENGINE);
    try {
      const answer = await dispatcher.dispatch({
        executionId: run.id, flowType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, payload: run.payload,
        statusUrl: this.statusUrl(run.id), token: token.secret,
      }, target, credentials);
      return { state: 'dispatched', tokenId: token.id, ...answer };
    } catch (err) {
      // The pipeline did not take the run: its token must not outlive the attempt.
      await this.d.tokens.delete(token.id, ENGINE).catch(() => undefined);
      return { state: 'failed', final: err instanceof DispatchRefused, error: redact(messageOf(err), credentials) };
    }
  }

  /** Records a dispatch; a run cancelled while it was being dispatched gets its pipeline cancelled now. */
  async recordDispatched(runId: string, outcome: DispatchResult & { tokenId: string }, attempt: number): Promise<void> {
    const { updated, status } = await this.d.cicdStore.markDispatched(runId, outcome);
    const where = `${outcome.cicdRunId ? ` (pipeline run ${outcome.cicdRunId})` : ''}${outcome.cicdRunUrl ? `: ${outcome.cicdRunUrl}` : ''}`;
    await this.log(runId, { level: 'info', message: `Dispatched to the CI/CD pipeline${where}` });
    await this.d.audit.record(ENGINE, 'run.dispatched', 'run', runId, { attempt, cicdRunId: outcome.cicdRunId ?? null, tokenId: outcome.tokenId });
    if (updated || status !== 'cancelled') return;
    const run = await this.d.store.findById(runId, true);
    if (!run) return;
    try {
      await this.cancelPipeline(run);
      await this.log(runId, { level: 'warn', message: 'The execution was cancelled while being dispatched; the pipeline was asked to cancel' });
    } catch (err) {
      await this.log(runId, { level: 'error', message: `The execution was cancelled while being dispatched, and cancelling the pipeline failed: ${messageOf(err)}` });
    }
  }

  async attemptFailed(runId: string, attempt: number, error: string, retryInMs?: number): Promise<void> {
    await this.log(runId, { level: retryInMs === undefined ? 'error' : 'warn', message: `Dispatch attempt ${attempt} failed: ${error}${retryInMs === undefined ? '' : `; retrying in ${retryInMs / 1000}s`}` });
  }

  /** The run fails when dispatching finally failed; returns false when it had already ended. */
  async dispatchFailed(runId: string, reason: string): Promise<boolean> {
    const error = `CI/CD dispatch failed: ${reason}`;
    if (!(await this.d.store.finish(runId, 'failed', undefined, error))) return false;
    // Inside an engine step: the dispatch workflow starts the announcement itself.
    await this.finished(runId, 'failed', ENGINE, error, {}, false);
    return true;
  }

  /** Tells the run's callback destination how it ended; throws when the destination refuses (the engine retries). */
  async announce(runId: string): Promise<void> {
    const run = await this.d.store.findById(runId);
    if (!run) return;
    await this.d.notifier.notify(run.callback, {
      event: 'run.finished', runId: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier,
      status: run.status, result: run.result, error: run.error ?? null,
    });
  }

  async announceFailed(runId: string, error: string): Promise<void> {
    await this.log(runId, { level: 'warn', group: 'notify', message: `Result not delivered: ${error}` });
  }

  /**
   * A pipeline's status report. Reports move a run forward only: once it ended, the same final
   * report is acknowledged without change and any other is refused (409 with the current status);
   * an execution token's authority ends with its run, so it is refused any report then.
   *
   * Runs of providers whose token others can read (GitHub Actions inputs) are checked against the
   * provider's API first: the pipeline run must be the dispatched one, and a final report must
   * match how it concluded. A final report sent before the run concluded (the normal case: the
   * workflow reports from inside it) is held, and the conclusion decides it (`settleHeld`).
   */
  async report(run: Run, input: StatusReport, actor: Actor, options: { executionToken?: boolean } = {}): Promise<ReportAnswer> {
    if (run.executionMode !== 'cicd') throw badRequest(`Execution ${run.id} runs in ${run.executionMode} mode; only cicd executions take status reports`);
    const full = (await this.d.store.findById(run.id, true)) ?? run;
    const target = full.definition?.cicd;
    let report = input;
    let verified: string | undefined;
    if (target && VERIFIED_PROVIDERS.has(target.provider) && !isTerminalRun(full.status)) {
      const { facts, hold } = await this.verify(full, target, input, actor);
      // The pipeline run's ids come from the provider's record, never from the report (its URL is shown to people).
      report = { ...input, cicdRunId: facts?.id, cicdRunUrl: facts?.url ?? undefined };
      if (facts && hold) return this.hold(full, { ...report, cicdRunId: facts.id }, facts, actor, options);
      verified = facts?.conclusion ? `${target.provider} run ${facts.id} concluded ${facts.conclusion}` : undefined;
    }
    return this.apply(run.id, report, actor, options, verified);
  }

  private async apply(runId: string, input: StatusReport, actor: Actor, options: { executionToken?: boolean }, verified?: string): Promise<ReportAnswer> {
    const terminal = isTerminalRun(input.status);
    const error = input.status === 'failed' ? 'the CI/CD pipeline reported failure' : input.status === 'cancelled' ? 'cancelled by the CI/CD pipeline' : null;
    const outcome = await this.d.cicdStore.report(runId, input, error, { refuseEnded: options.executionToken });
    if (outcome.kind === 'missing') throw notFound(`Execution ${runId} not found`);
    if (outcome.kind === 'conflict') {
      const why = options.executionToken ? '; its execution token ended with it' : '';
      await this.d.audit.record(actor, 'run.report_refused', 'run', runId, { status: input.status, currentStatus: outcome.status, reason: `run already ended${why}` });
      throw conflict(`Execution ${runId} already ended ${outcome.status}; a "${input.status}" report cannot change it${why}`, { currentStatus: outcome.status });
    }
    if (outcome.kind === 'repeated') return { status: outcome.status, changed: false };
    const ids = [input.cicdRunId && `pipeline run ${input.cicdRunId}`, input.cicdRunUrl].filter(Boolean).join(', ');
    await this.log(runId, { level: input.status === 'failed' ? 'error' : 'info', message: `CI/CD pipeline reported ${input.status}${ids ? ` (${ids})` : ''}` });
    if (terminal) await this.finished(runId, input.status, actor, error, { reportedBy: actor.name, ...(verified ? { verified } : {}) });
    else await this.d.audit.record(actor, 'run.status_reported', 'run', runId, { status: input.status, from: outcome.from, cicdRunId: input.cicdRunId ?? null });
    return { status: outcome.status, changed: true };
  }

  /**
   * Checks a report against the provider's record of the pipeline run. A progress report naming no
   * pipeline run binds nothing and is taken as it is; everything else needs the pipeline run.
   */
  private async verify(run: Run, target: CicdTarget, input: StatusReport, actor: Actor): Promise<{ facts: PipelineRunFacts | null; hold: boolean }> {
    const dispatcher = this.d.dispatchers.for(target.provider);
    if (!dispatcher?.pipelineRun)
      throw new AppError('service_unavailable', `Reports of execution ${run.id} are checked against ${target.provider}, which is not configured on this server; nothing changed`);
    if (input.cicdRunId && run.cicdRunId && input.cicdRunId !== run.cicdRunId)
      return this.refuse(run, input, actor, `execution ${run.id} runs as pipeline run ${run.cicdRunId}, not ${input.cicdRunId}`);
    const terminal = isTerminalRun(input.status);
    const cicdRunId = input.cicdRunId ?? run.cicdRunId ?? null;
    if (!cicdRunId && !terminal) return { facts: null, hold: false };
    let facts: PipelineRunFacts | null;
    try {
      facts = await dispatcher.pipelineRun({ executionId: run.id, cicdRunId }, target);
    } catch (err) {
      throw new AppError('service_unavailable', `Checking the report of execution ${run.id} against ${target.provider} failed: ${redact(messageOf(err), this.options.credentials)}; nothing changed, report again`);
    }
    if (!facts) return this.refuse(run, input, actor, `${target.provider} has no run ${cicdRunId ?? `named after execution ${run.id}`} of ${run.repositoryIdentifier}`);
    const problem = identityProblem(facts, { workflow: target.workflow ?? '', notBefore: run.createdAt });
    if (problem) return this.refuse(run, input, actor, problem);
    const owner = await this.d.cicdStore.pipelineRunOwner(run.repositoryIdentifier, facts.id, run.id);
    if (owner) return this.refuse(run, input, actor, `pipeline run ${facts.id} belongs to execution ${owner}`);
    if (!terminal) return { facts, hold: false };
    const end = endOf(facts);
    if (!end) return { facts, hold: true };
    if (!reportMatches(input.status, end)) return this.refuse(run, input, actor, `${target.provider} run ${facts.id} concluded ${facts.conclusion}, not "${input.status}"`);
    return { facts, hold: false };
  }

  /** A report the provider's record contradicts: refused (403), audited and logged; nothing else changes. */
  private async refuse(run: Run, input: StatusReport, actor: Actor, reason: string): Promise<never> {
    await this.d.audit.record(actor, 'run.report_refused', 'run', run.id, { status: input.status, cicdRunId: input.cicdRunId ?? null, reason });
    await this.log(run.id, { level: 'warn', message: `A "${input.status}" report was refused: ${reason}` });
    throw new AppError('forbidden', `The "${input.status}" report of execution ${run.id} was refused: ${reason}`, [], { currentStatus: run.status });
  }

  private async hold(run: Run, input: StatusReport & { cicdRunId: string }, facts: PipelineRunFacts, actor: Actor, options: { executionToken?: boolean }): Promise<ReportAnswer> {
    const outcome = await this.d.cicdStore.hold(run.id, input, actor);
    // Ended meanwhile: answered like any report to an ended run.
    if (!outcome.held) return this.apply(run.id, input, actor, options);
    await this.log(run.id, { level: 'info', message: `CI/CD pipeline reported ${input.status} (pipeline run ${facts.id}); held until the pipeline run concludes` });
    await this.d.audit.record(actor, 'run.status_held', 'run', run.id, { status: input.status, cicdRunId: facts.id });
    this.settleSoon(run.id);
    return { status: outcome.status, changed: false, pending: input.status };
  }

  /** Settles held reports a little later, in this process; the sweep settles whatever this misses. */
  private settleSoon(runId: string): void {
    for (const ms of SETTLE_DELAYS_MS) setTimeout(() => void this.settleHeld(runId).catch(() => undefined), ms).unref();
  }

  /**
   * Decides a run's held reports once its pipeline run concluded: the conclusion ends the run, a
   * held report that matches it gives its result and author, the others are refused (audited).
   * Returns whether the run was settled; false while the pipeline run has not concluded.
   */
  async settleHeld(runId: string): Promise<boolean> {
    const held = await this.d.cicdStore.heldReports(runId);
    if (!held.length) return false;
    const run = await this.d.store.findById(runId, true);
    const target = run?.definition?.cicd;
    const dispatcher = target && this.d.dispatchers.for(target.provider);
    if (!run || isTerminalRun(run.status)) {
      await this.d.cicdStore.takeHeld(runId);
      return false;
    }
    if (!target || !dispatcher?.pipelineRun) return false;
    const cicdRunId = held[held.length - 1].cicdRunId;
    const facts = await dispatcher.pipelineRun({ executionId: run.id, cicdRunId }, target);
    const end = facts && endOf(facts);
    if (facts && !end) return false;
    const taken = await this.d.cicdStore.takeHeld(runId);
    if (!taken.length) return false;
    const match = end ? taken.find((h) => h.cicdRunId === facts!.id && reportMatches(h.status, end)) : undefined;
    for (const h of taken.filter((x) => x !== match)) {
      const reason = facts ? `${target.provider} run ${facts.id} concluded ${facts.conclusion}` : `${target.provider} has no run ${h.cicdRunId}`;
      await this.d.audit.record(h.actor, 'run.report_refused', 'run', runId, { status: h.status, cicdRunId: h.cicdRunId, reason });
      await this.log(runId, { level: 'warn', message: `The held "${h.status}" report was refused: ${reason}` });
    }
    if (!facts || !end) return false;
    const verified = `${target.provider} run ${facts.id} concluded ${facts.conclusion}`;
    if (match) {
      await this.apply(runId, { status: match.status, result: match.result ?? undefined, cicdRunId: match.cicdRunId, cicdRunUrl: match.cicdRunUrl ?? undefined }, match.actor, {}, verified)
        .catch((err) => { if (!(err instanceof AppError && err.code === 'conflict')) throw err; });
      return true;
    }
    // No report matches: the pipeline's own record decides.
    const error = end === 'completed' ? null : verified;
    const outcome = await this.d.cicdStore.report(runId, { status: end, cicdRunId: facts.id, cicdRunUrl: facts.url ?? undefined }, error);
    if (outcome.kind !== 'applied') return false;
    await this.finished(runId, end, ENGINE, error, { verified });
    return true;
  }

  /** One sweep: settles the held reports whose pipeline runs concluded. */
  async settleAllHeld(limit = 50): Promise<number> {
    let settled = 0;
    for (const runId of await this.d.cicdStore.runsWithHeldReports(limit)) {
      if (await this.settleHeld(runId)) settled += 1;
    }
    return settled;
  }

  /**
   * Cancels a cicd run: a run not yet handed over is cancelled here (its dispatch, if it lands
   * anyway, is cancelled by the engine); otherwise the provider cancels the pipeline first, and a
   * provider that cannot be reached leaves the run as it was (503).
   */
  async cancel(run: Run, actor: Actor): Promise<string[]> {
    const reason = `cancelled by ${actor.name}`;
    let cancelled = await this.d.cicdStore.cancelIfQueued(run.id, reason);
    if (!cancelled) {
      const full = (await this.d.store.findById(run.id, true)) ?? run;
      if (isTerminalRun(full.status)) throw badRequest(`Execution already ${full.status}`);
      try {
        await this.cancelPipeline(full);
      } catch (err) {
        throw new AppError('service_unavailable', `Cancelling the CI/CD pipeline of execution ${run.id} failed: ${messageOf(err)}; the execution is still ${full.status}`);
      }
      cancelled = (await this.d.store.cancelRuns([run.id], reason)).length > 0;
      if (!cancelled) throw badRequest(`Execution already ${(await this.d.store.findById(run.id))?.status ?? 'ended'}`);
      await this.log(run.id, { level: 'info', message: 'The CI/CD pipeline was asked to cancel' });
    }
    await this.finished(run.id, 'cancelled', actor, reason);
    return [run.id];
  }

  /**
   * `RunStore.cancelRuns` for runs that may include cicd runs (the pipelines of `cicd.run` steps):
   * those are cancelled after the others, so a parent woken by its pipeline's end finds itself
   * cancelled. Their parent is going: each is cancelled, then its pipeline asked to cancel (unlike
   * `cancel`, a pipeline that cannot be reached is only logged on its run). `announce`: the run
   * whose thread hears of its end in the cancel's own transaction (a v2 run; see `RunStore.cancelRuns`).
   */
  async cancelRuns(runIds: string[], reason: string, actor: Actor, note?: { runId: string; line: NewLogLine }, announce: string | null = null): Promise<string[]> {
    const pipelines = await this.d.cicdStore.openAmong(runIds);
    const cancelled = await this.d.store.cancelRuns(runIds.filter((id) => !pipelines.includes(id)), reason, note, { actor, announce });
    for (const id of pipelines) {
      // Whoever ends it asks its pipeline (a queued one's dispatch, if it lands, does): the end of
      // its parent run may end it at the same moment, and its pipeline is asked once.
      if (!(await this.d.cicdStore.cancelIfQueued(id, reason))) {
        if (!(await this.d.store.cancelRuns([id], reason)).length) continue;
        const run = await this.d.store.findById(id, true);
        if (run) await this.askToCancel(run);
      }
      await this.finished(id, 'cancelled', actor, reason);
      cancelled.push(id);
    }
    return cancelled;
  }

  /**
   * Asks the pipelines under a run (`cicd.run` steps, in it or in its child flows) that its end
   * cancelled to stop: the executor ends a run's descendants with it in one statement, without
   * their providers.
   */
  async stopAbandoned(runId: string): Promise<void> {
    for (const id of await this.d.cicdStore.abandonedUnder(runId)) {
      const run = await this.d.store.findById(id, true);
      if (run) await this.askToCancel(run);
    }
  }

  private async askToCancel(run: Run): Promise<void> {
    try {
      await this.cancelPipeline(run);
      await this.log(run.id, { level: 'info', message: 'The CI/CD pipeline was asked to cancel' });
    } catch (err) {
      await this.log(run.id, { level: 'error', message: `Cancelling the CI/CD pipeline failed: ${messageOf(err)}` });
    }
  }

  private async cancelPipeline(run: Run): Promise<void> {
    const target = run.definition?.cicd;
    const dispatcher = target && this.d.dispatchers.for(target.provider);
    if (!target || !dispatcher) throw new Error(`no ${target?.provider ?? 'cicd'} dispatcher is configured on this server`);
    const credentials = await this.credentialsOf(run.repositoryIdentifier, target);
    try {
      await dispatcher.cancel({ executionId: run.id, cicdRunId: run.cicdRunId ?? null }, target, credentials);
    } catch (err) {
      throw new Error(redact(messageOf(err), credentials));
    }
  }

  /** What every end of a cicd run does: log line, audit record, metric, and the callback told (durably). */
  private async finished(runId: string, status: RunStatus, actor: Actor, error: string | null, details: Record<string, unknown> = {}, announce = true): Promise<void> {
    await this.log(runId, { level: status === 'completed' || status === 'partial' ? 'info' : status === 'cancelled' ? 'warn' : 'error', message: `Run ${status}${error ? `: ${error}` : ''}` });
    await this.d.audit.record(actor, `run.${status}`, 'run', runId, { ...details, ...(error ? { error } : {}) });
    this.options.runFinished(status);
    // A run waiting on it (a `cicd.run` step) looks at once.
    await this.d.store.wakeParentsOf([runId]);
    if (!announce) return;
    const run = await this.d.store.findById(runId);
    try {
      if (run) await this.d.engine.announceFinished(run);
    } catch (err) {
      await this.log(runId, { level: 'warn', group: 'notify', message: `Result not delivered: ${messageOf(err)}` });
    }
  }

  private log(runId: string, line: Pick<NewLogLine, 'level' | 'message'> & { group?: string }): Promise<void> {
    return this.d.logs.append(runId, [{ source: 'cicd', group: line.group ?? 'run', level: line.level, message: line.message }]);
  }
}
