import { Run, type Callback, type WorkItemRef } from '../../db/entities/run.js';
import { AppError, badRequest, conflict, engineUnavailable, forbidden, notFound } from '../../errors.js';
import type { ApprovalService } from '../approvals/approval-service.js';
import type { CicdService } from '../cicd/cicd-service.js';
import { SYSTEM, type AuditLog, type Actor } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import type { Principal } from '../identity/principal.js';
import { requireProjectAccess } from '../identity/principal.js';
import type { NewLogLine } from '../logs/run-logs.js';
import type { ProjectService } from '../projects/projects.js';
import type { FlowRegistry } from '../registry/registry.js';
import { isTerminalRun } from '../status.js';
import { foreignCallbackProblem } from './callback-rules.js';
import type { EnginePort } from './engine-port.js';
import type { RunLauncher } from './run-launcher.js';
import type { IntakeLease, RunStore } from './run-store.js';
import type { EngineRun } from '../../engine/engine-run.js';
import { actorOfRequester, controlRefusal, triggeredByOfRequester, type ControlVerb, type RunRequester } from './run-permissions.js';

export interface StartRunInput {
  /** Must hold `id`, the flow type; the rest are the flow's parameters. */
  payload: Record<string, unknown>;
  repositoryIdentifier: string;
  triggeredBy: string;
  /** The person the run acts for when the trigger is not a person (a schedule's author). */
  requestedBy?: string | null;
  callback?: Callback | null;
  /** The callback is an earlier run's (a rerun), not the caller's choice, so it is not checked again. */
  callbackInherited?: boolean;
  workItemRef?: WorkItemRef | null;
  parentRunId?: string | null;
  rerunOfExecutionId?: string | null;
  schedulePath?: string | null;
  /** Labels of the run (bounded by the API that accepts them). */
  tags?: Record<string, string>;
  /** Preset ids make creation idempotent (a child run started by a replayed step). */
  id?: string;
  /** What started the run, as its steps read it (`trigger.*`). */
  trigger?: Record<string, unknown> | null;
}

/** Tells a run's callback destination that it ended: durably, once per run (an engine workflow). */
export interface RunAnnouncer {
  announceFinished(run: { id: string; engineRunId: string }): Promise<void>;
}

export interface RunMetrics {
  runStarted(taskType: string): void;
}

/** The v2 executor as the run service sees it: committed runs wake it, or are handed to it leased. */
export interface ExecutorPort {
  reserve(): IntakeLease | null;
  adopt(run: Omit<EngineRun, 'engineRunId'> & { expiresAt: string | null; trigger: Record<string, unknown> | null }, lease: IntakeLease): void;
  unreserve(): void;
  runsCommitted(): void;
  wake(): void;
  hold(runId: string): Promise<void>;
  /** `hold` for a run that ended outside the executor: its steps in flight give up (an HTTP call is hung up on). */
  abandon(runIds: string[]): Promise<void>;
}

/** Starting, reading and stopping runs: the rules every door shares. */
export class RunService {
  constructor(
    private readonly store: RunStore,
    private readonly registry: FlowRegistry,
    private readonly projects: ProjectService,
    private readonly engine: EnginePort,
    private readonly launcher: RunLauncher,
    private readonly audit: AuditLog,
    private readonly approvals: ApprovalService,
    private readonly metrics: RunMetrics,
    private readonly cicd: CicdService,
    private readonly announcer: RunAnnouncer,
    /** Set when flow runs go to the v2 executor: a committed run is claimable, the executor only needs waking. */
    private readonly executor?: ExecutorPort,
  ) {}

  /**
   * Validates a start request against the registry and the project; returns the run to insert.
   * A cicd flow type is accepted only with `dispatchCicd` (by `start`, which dispatches it): callers
   * that run the prepared run on the flow engine themselves (child flows) must not get one.
   */
  async prepare(input: StartRunInput, options: { dispatchCicd?: boolean } = {}): Promise<Run> {
    const requested = input.payload.id;
    if (typeof requested !== 'string' || !requested)
      throw badRequest('payload.id must name a flow type', [{ field: 'payload.id', message: 'required: the flow type id', location: 'body' }]);
    const project = await this.projects.findShared(input.repositoryIdentifier);
    if (!project)
      throw badRequest(`Unknown project ${input.repositoryIdentifier}`, [{ field: 'payload.repositoryIdentifier', message: `project "${input.repositoryIdentifier}" is not registered`, location: 'body' }]);
    if (!this.registry.find(requested)) {
      const known = this.registry.listFor([project.repositoryIdentifier]).map((d) => d.id).join(', ');
      throw badRequest(`Unknown flow type "${requested}"`, [{ field: 'payload.id', message: `unknown flow type "${requested}" (known: ${known})`, location: 'body' }]);
    }
    const disabled = new Set(project.settings.disabledFlowTypes ?? []);
    if (disabled.has(requested)) throw badRequest(`Flow type "${requested}" is disabled for project ${project.repositoryIdentifier}`, [{ field: 'payload.id', message: 'disabled for this project', location: 'body' }]);
    const target = project.settings.overrides?.[requested] ?? requested;
    const def = this.registry.find(target);
    if (!def) throw badRequest(`Flow type "${requested}" is overridden to unknown flow type "${target}"`);
    // A flow document belongs to its namespace's project: another project cannot run it.
    if (def.document && def.document.repositoryIdentifier !== project.repositoryIdentifier)
      throw badRequest(`Flow type "${def.id}" is a flow of namespace ${def.document.namespace}: it runs only in that namespace's project`, [{ field: 'payload.id', message: `runs only in project ${def.document.repositoryIdentifier}`, location: 'body' }]);
    if (disabled.has(target)) throw badRequest(`Flow type "${target}" (override of "${requested}") is disabled for project ${project.repositoryIdentifier}`);
    if (def.executionMode === 'cicd') {
      await this.cicd.requireDispatchable(def, project.repositoryIdentifier);
      if (!options.dispatchCicd)
        throw badRequest(`Flow type "${def.id}" runs in cicd mode: it is dispatched to its pipeline only when started on its own (POST /run), not as a child flow or from a schedule`, [{ field: 'payload.id', message: 'a cicd flow type can only be started on its own', location: 'body' }]);
    }
    const payload = this.registry.applyParameters(def, { ...input.payload, id: requested });
    const id = input.id ?? newId();
    return Object.assign(new Run(), {
      id,
      engineRunId: `run-${id}`,
      taskType: def.id,
      requestedTaskType: target !== requested ? requested : null,
      flowPath: def.id,
      category: def.category,
      executionMode: def.executionMode,
      repositoryIdentifier: project.repositoryIdentifier,
      status: 'queued',
      payload,
      result: {},
      definition: def,
      triggeredBy: input.triggeredBy,
      requestedBy: input.requestedBy ?? null,
      workItemRef: input.workItemRef ?? null,
      callback: input.callback ?? null,
      parentRunId: input.parentRunId ?? null,
      rerunOfExecutionId: input.rerunOfExecutionId ?? null,
      rerunType: input.rerunOfExecutionId ? 'rerun' : null,
      schedulePath: input.schedulePath ?? null,
      tags: input.tags ?? {},
      trigger: input.trigger ?? null,
      maxParallelSteps: def.maxParallelSteps ?? 0,
      expiresAt: def.timeout ? new Date(Date.now() + def.timeout * 1000) : null,
      logSeq: 0,
      createdAt: new Date(),
      updatedAt: new Date(),
    } satisfies Partial<Run>);
  }

  /**
   * Records a run and answers: the run row, its first log line and the audit record commit
   * together, and the launcher hands the run to the engine right after (a cicd run is dispatched
   * before answering, so a dispatch that cannot be made is the caller's error).
   */
  async start(input: StartRunInput, actor: Actor): Promise<Run> {
    const run = await this.prepare(input, { dispatchCicd: true });
    if (input.callback && !input.callbackInherited && input.callback.type !== 'none' && input.callback.type !== 'webhook') {
      const foreign = foreignCallbackProblem(input.callback, (await this.projects.get(run.repositoryIdentifier)), actor.door);
      if (foreign) {
        await this.audit.record(actor, 'run.refused', 'project', run.repositoryIdentifier, { taskType: run.taskType, reason: foreign });
        throw forbidden(foreign);
      }
    }
    // A process whose engine is stopped (shutting down) refuses rather than queue work it cannot start.
    if (!this.engine.isRunning()) throw engineUnavailable('Flow engine is not running');
    // Written with the run: a fast run must not end before its first line.
    const opening: NewLogLine = { level: 'info', source: 'engine', group: 'run', message: `Run of ${run.taskType} started by ${run.triggeredBy}${run.requestedTaskType ? ` (override of ${run.requestedTaskType})` : ''}` };
    const v2 = this.executor !== undefined && run.executionMode === 'flow';
    // Handed to this process's executor with the commit when it has room (no claim needed).
    const lease = v2 ? this.executor!.reserve() : null;
    let inserted: boolean;
    try {
      inserted = await this.store.insertStarted(run, opening, { actor, action: 'run.started', details: { taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, requestedTaskType: run.requestedTaskType } },
        v2 ? 'v2' : null, null, lease);
    } catch (err) {
      if (lease) this.executor!.unreserve();
      throw err;
    }
    if (!inserted) {
      if (lease) this.executor!.unreserve();
      // A preset id seen before: a replayed door delivery gets the run it already started.
      const existing = input.id ? await this.store.findById(input.id) : null;
      // The unique key that refused the insert was not the run id (an engine run id taken by another run).
      if (!existing) throw conflict(`Execution id ${run.engineRunId} is already taken`);
      if (existing.executionMode === 'flow' && existing.engine === 'flowgate' && existing.status === 'queued') this.handOver(existing);
      return existing;
    }
    if (run.executionMode === 'cicd') {
      try {
        await this.cicd.start(run);
      } catch (err) {
        await this.store.finish(run.id, 'failed', undefined, 'Flow engine unavailable: the run could not be started');
        throw err instanceof AppError ? err : new AppError('engine_unavailable', 'Flow engine unavailable');
      }
    } else if (lease) {
      this.executor!.adopt({
        id: run.id, taskType: run.taskType, repositoryIdentifier: run.repositoryIdentifier, triggeredBy: run.triggeredBy, requestedBy: run.requestedBy ?? run.triggeredBy,
        parentRunId: run.parentRunId ?? null, payload: run.payload, callback: run.callback ?? null, definition: run.definition,
        expiresAt: run.expiresAt ? run.expiresAt.toISOString() : null, trigger: run.trigger ?? null,
      }, lease);
    } else {
      this.handOver(run);
    }
    this.metrics.runStarted(run.taskType);
    return run;
  }

  private handOver(run: Run): void {
    if (this.executor) this.executor.runsCommitted();
    else this.launcher.submit(run);
  }

  /** A run by its id or engine run id, checked against the caller's projects. */
  async get(idOrEngineId: string, principal?: Principal): Promise<Run> {
    const run = await this.store.findByIdOrEngineId(idOrEngineId);
    if (!run) throw notFound(`Execution ${idOrEngineId} not found`);
    if (principal) requireProjectAccess(principal, run.repositoryIdentifier);
    return run;
  }

  /**
   * Cancels a run and everything it started, if `who` may (`controlRefusal`: the same rule for
   * REST and every door). A refusal changes nothing and is audited. The run's thread hears of it
   * as of any other end: its approvals' messages through their `changed` effects, its callback
   * through one durable `run.finished` notice (a cicd run's through its own end). The pipelines
   * under it (`cicd.run` steps) are asked to cancel through their providers.
   */
  async cancel(run: Run, who: RunRequester): Promise<string[]> {
    await this.requireControl(run, who, 'cancel');
    const actor = actorOfRequester(who);
    if (isTerminalRun(run.status)) throw badRequest(`Execution already ${run.status}`);
    // Shutting down (or never up): refuse before anything changes, as a start does.
    if (!this.engine.isRunning()) throw engineUnavailable('Flow engine is not running');
    if (run.executionMode === 'cicd') return this.cicd.cancel(run, actor);
    if (this.executor && (await this.store.requestCancel(run.id, `cancelled by ${actor.name}`, { actor, action: 'run.cancel_requested' }))) return this.cancelCompensating(run, actor);
    const ids = await this.store.subtreeIds(run.id);
    if (run.engine === 'flowgate' && run.engineVersion !== 'v2') await this.engine.cancelRun(run.engineRunId);
    // A v2 run's approvals, waiting parents and thread are told in the cancel's own transaction.
    const cancelled = await this.cicd.cancelRuns(ids, `cancelled by ${actor.name}`, actor, { runId: run.id, line: { level: 'warn', source: 'engine', group: 'run', message: `Run cancelled by ${actor.name}` } }, run.id);
    if (this.executor) {
      // The parents of pipelines cancelled after the transaction; an executor working on a run stops,
      // abandoning the steps in flight (what they would write is refused: the run has ended).
      await this.store.wakeParentsOf(cancelled);
      await this.executor.abandon(cancelled);
    }
    // The previous engine's runs (a v2 run's were closed with it).
    await this.approvals.closeForRuns(cancelled, 'cancelled', actor);
    await this.audit.record(actor, 'run.cancelled', 'run', run.id, { cancelled });
    if (cancelled.includes(run.id) && run.engineVersion !== 'v2') await this.announceEnd(run);
    return cancelled;
  }

  /**
   * A v2 run whose flow compensates was asked to stop (`requestCancel`): the executor cancels its
   * running steps and runs the compensations before it ends the run cancelled (and announces it);
   * its descendants and approvals stop now.
   */
  private async cancelCompensating(run: Run, actor: Actor): Promise<string[]> {
    const below = (await this.store.subtreeIds(run.id)).filter((id) => id !== run.id);
    const cancelled = await this.cicd.cancelRuns(below, `cancelled by ${actor.name} (parent ${run.id} cancelled)`, actor);
    await this.executor!.abandon(cancelled);
    await this.approvals.closeForRuns([run.id, ...cancelled], 'cancelled', actor);
    // Who asked was recorded with the request; the executor records the run's end (`run.cancelled`) once it has compensated.
    await this.executor!.hold(run.id);
    this.executor!.wake();
    return [run.id, ...cancelled];
  }

  /** Cancels the unfinished children of a run (and their descendants), leaving the run itself alone; same rule as `cancel`. */
  async cancelChildren(run: Run, who: RunRequester): Promise<string[]> {
    await this.requireControl(run, who, 'cancel');
    const actor = actorOfRequester(who);
    const children = (await this.store.children(run.id)).filter((c) => !isTerminalRun(c.status));
    const cancelled: string[] = [];
    for (const child of children) {
      if (child.engine === 'flowgate' && child.engineVersion !== 'v2') await this.engine.cancelRun(child.engineRunId);
      const ids = await this.cicd.cancelRuns(await this.store.subtreeIds(child.id), `cancelled by ${actor.name} (children of ${run.id})`, actor, undefined, child.id);
      await this.approvals.closeForRuns(ids, 'cancelled', actor);
      cancelled.push(...ids);
      if (ids.includes(child.id) && child.engineVersion !== 'v2') await this.announceEnd(child);
    }
    if (this.executor) await this.store.wakeParentsOf(cancelled);
    await this.audit.record(actor, 'run.children_cancelled', 'run', run.id, { cancelled });
    return cancelled;
  }

  /** Starts the run again as `who` (same rule as `cancel`: a rerun talks in the original's thread). */
  async rerun(run: Run, payloadOverrides: Record<string, unknown>, who: RunRequester): Promise<Run> {
    await this.requireControl(run, who, 'rerun');
    if (run.executionMode !== 'flow') throw badRequest('Only flow-mode executions can be rerun');
    if (!isTerminalRun(run.status))
      throw badRequest(`Execution cannot be rerun while ${run.status}; only completed, failed or cancelled executions can`);
    // A child registered by an external engine names the payload its rerun needs.
    const payload = { ...(run.rerunPayload ?? run.payload), ...payloadOverrides, id: run.requestedTaskType ?? run.taskType };
    return this.start({
      payload,
      repositoryIdentifier: run.repositoryIdentifier,
      triggeredBy: triggeredByOfRequester(who),
      callback: run.callback,
      callbackInherited: true,
      workItemRef: run.workItemRef,
      parentRunId: run.parentRunId,
      rerunOfExecutionId: run.id,
    }, actorOfRequester(who));
  }

  /** Whether runs go to the v2 executor, which carries run control (pause, skip, retry…). */
  carriesControl(): boolean {
    return this.executor !== undefined;
  }

  /**
   * Records a retry of an ended run (`RunControl.retryRun` checked it): same definition, payload,
   * step cap and thread; its completed steps are copied with their outputs in the statement that
   * creates it, so the executor starts at the first step that did not complete.
   */
  async retry(run: Run, who: RunRequester, actor: Actor): Promise<Run> {
    const id = newId();
    const retry = Object.assign(new Run(), {
      id, engineRunId: `run-${id}`, taskType: run.taskType, requestedTaskType: run.requestedTaskType ?? null, flowPath: run.flowPath, category: run.category,
      executionMode: run.executionMode, repositoryIdentifier: run.repositoryIdentifier, status: 'queued', payload: run.payload, result: {},
      definition: run.definition, triggeredBy: 'retry', requestedBy: triggeredByOfRequester(who), workItemRef: run.workItemRef ?? null, callback: run.callback ?? null,
      parentRunId: run.parentRunId ?? null, rerunOfExecutionId: run.id, rerunType: 'retry', schedulePath: null, tags: run.tags ?? {},
      maxParallelSteps: run.maxParallelSteps ?? 0, expiresAt: run.definition.timeout ? new Date(Date.now() + run.definition.timeout * 1000) : null,
      logSeq: 0, createdAt: new Date(), updatedAt: new Date(),
    } satisfies Partial<Run>);
    await this.store.insertStarted(retry, { level: 'info', source: 'engine', group: 'run', message: `Run of ${run.taskType} started by ${actor.name}: retry of run ${run.id}, keeping its completed steps` },
      { actor, action: 'run.retried', details: { retryOf: run.id, taskType: run.taskType } }, 'v2', run.id);
    this.executor!.runsCommitted();
    this.metrics.runStarted(retry.taskType);
    return retry;
  }

  /** Cancels runs (with their descendants) that a control action made pointless: a skipped step's children. */
  async cancelRunsFor(ids: string[], actor: Actor, reason: string): Promise<string[]> {
    const all = [...new Set((await Promise.all(ids.map((id) => this.store.subtreeIds(id)))).flat())];
    const cancelled = await this.cicd.cancelRuns(all, `cancelled: ${reason}`, actor);
    await this.approvals.closeForRuns(cancelled, 'cancelled', actor);
    return cancelled;
  }

  /** Why `who` may not cancel or rerun the run, or undefined; for doors that explain before acting. */
  async controlRefusal(run: Run, who: RunRequester, verb: ControlVerb): Promise<string | undefined> {
    return controlRefusal(run, who, await this.projects.find(run.repositoryIdentifier), verb);
  }

  async requireControl(run: Run, who: RunRequester, verb: ControlVerb): Promise<void> {
    const why = await this.controlRefusal(run, who, verb);
    if (!why) return;
    await this.audit.record(actorOfRequester(who), `run.${verb}_refused`, 'run', run.id, { reason: why });
    throw forbidden(why);
  }

  /** A cancelled run's callback is told once, durably; a failure to start telling it must not undo the cancel. */
  private async announceEnd(run: Run): Promise<void> {
    if (!run.callback || run.callback.type === 'none') return;
    try {
      // A v2 run's thread hears it through the outbox, after its approvals' changes.
      if (await this.store.queueNotice(run.id, 'run.finished')) return;
      await this.announcer.announceFinished(run);
    } catch (err) {
      // The run is cancelled either way: say what its thread missed rather than fail the cancel.
      await this.audit.record(SYSTEM, 'run.announce_failed', 'run', run.id, { error: (err as Error).message });
    }
  }
}
