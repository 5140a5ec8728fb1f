import type { Run } from '../../db/entities/run.js';
import type { StepRun } from '../../db/entities/step-run.js';
import { badRequest, conflict, engineUnavailable, notFound } from '../../errors.js';
import type { ApprovalService } from '../approvals/approval-service.js';
import type { Actor, AuditEntry } from '../audit/audit-log.js';
import type { NewLogLine } from '../logs/run-logs.js';
import { descendants } from '../registry/graph.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import { isTerminalRun, TERMINAL_STEP_STATUSES, type RunStatus, type StepStatus } from '../status.js';
import type { RunService } from './run-service.js';
import type { RunStore } from './run-store.js';
import { actorOfRequester, type ControlVerb, type RunRequester } from './run-permissions.js';
import { overridable, rowsToReset, statusOf, type ControlStep } from './step-control.js';

export interface ControlStepRow extends ControlStep {
  kind: string;
  attempt: number;
  output: unknown;
}

/** A run locked for a control action (see executor/control-store.ts): what it reads and writes, committed together. */
export interface ControlTxPort {
  readonly run: { id: string; status: RunStatus; definition: FlowDefinition };
  readonly steps: ControlStepRow[];
  overrideStep(ref: string, kind: string, status: StepStatus, output: unknown, error: string | null, by: string): Promise<void>;
  resetSteps(refs: string[]): Promise<void>;
  reopen(): Promise<void>;
  setStatus(status: 'running' | 'paused'): Promise<void>;
  record(lines: NewLogLine[], audit: AuditEntry): Promise<void>;
  stepRow(ref: string): Promise<StepRun>;
}

export interface ControlStorePort {
  withRun<T>(runId: string, act: (tx: ControlTxPort) => Promise<T>): Promise<T>;
  pause(runId: string, lines: NewLogLine[], audit: AuditEntry): Promise<boolean>;
  resume(runId: string, lines: NewLogLine[], audit: AuditEntry): Promise<boolean>;
}

/** A parked step's wait that outlives the step unless closed: its approval, its child runs. */
interface Loose {
  approvalId?: string;
  children: string[];
}

const line = (level: NewLogLine['level'], message: string): NewLogLine => ({ level, source: 'engine', group: 'control', message });

/**
 * Run control — pause, resume, skip, force-complete, step retry, subtree replay, run retry — for
 * every API and door. Who may is `RunService`'s one rule; the step rows change only while no
 * executor works on the run (`ControlStorePort.withRun`), and each action is logged on the run
 * and audited in the same transaction.
 */
export class RunControl {
  constructor(
    private readonly runs: RunService,
    private readonly store: RunStore,
    private readonly control: ControlStorePort,
    private readonly approvals: ApprovalService,
  ) {}

  async pause(run: Run, who: RunRequester): Promise<Run> {
    const actor = await this.permit(run, who, 'pause');
    if (run.status === 'paused') return run;
    this.requireV2(run);
    if (isTerminalRun(run.status)) throw badRequest(`Run ${run.id} has already ended (${run.status}); it cannot be paused`);
    const paused = await this.control.pause(run.id, [line('warn', `Run paused by ${actor.name}: running steps finish, nothing new starts`)], { actor, action: 'run.paused' });
    if (!paused) {
      const now = await this.reread(run);
      if (now.status === 'paused') return now;
      throw badRequest(`Run ${run.id} is ${now.status}: it can only be paused from running state`);
    }
    return this.reread(run);
  }

  async resume(run: Run, who: RunRequester): Promise<Run> {
    const actor = await this.permit(run, who, 'resume');
    this.requireV2(run);
    if (run.status !== 'paused' || !(await this.control.resume(run.id, [line('info', `Run resumed by ${actor.name}`)], { actor, action: 'run.resumed' })))
      throw badRequest(`Run ${run.id} is ${(await this.reread(run)).status}: only a paused run can be resumed`);
    return this.reread(run);
  }

  /**
   * Skips a step that has not run to an end. A skipped approval step is a rejection (with the
   * reason): what it gates is skipped too, so skipping can never let gated work through.
   */
  async skipStep(run: Run, ref: string, reason: string | null, who: RunRequester): Promise<StepRun> {
    run = await this.withDefinition(run);
    const actor = await this.permit(run, who, 'control');
    const def = this.stepOf(run, ref);
    const why = reason?.trim() || `skipped by ${actor.name}`;
    const done = await this.withOpenRun(run, async (tx) => {
      const status = statusOf(tx.steps, ref);
      if (!overridable(status)) throw badRequest(`cannot skip step in ${status} status: only a pending or waiting step can be skipped`);
      const row = tx.steps.find((s) => s.ref === ref);
      await tx.overrideStep(ref, def.type, 'skipped', null, why, actor.name);
      await tx.record([line('warn', `Step ${ref} skipped by ${actor.name}: ${why}${def.type === 'approval' ? ' (its approval is rejected; the steps it gates are skipped)' : ''}`)],
        { actor, action: 'step.skipped', details: { step: ref, reason: why } });
      return { loose: row ? looseOf(row) : { children: [] }, step: await tx.stepRow(ref) };
    });
    await this.closeLoose(done.loose, 'rejected', actor, why);
    return done.step;
  }

  /** Completes a step that has not run to an end with the given output. Never an approval step: only its approvers complete it. */
  async forceCompleteStep(run: Run, ref: string, result: unknown, who: RunRequester): Promise<StepRun> {
    run = await this.withDefinition(run);
    const actor = await this.permit(run, who, 'control');
    const def = this.stepOf(run, ref);
    if (def.type === 'approval')
      throw badRequest(`Step ${ref} is an approval: it completes only through its approvers' decision (approve it), or skip it to reject it`);
    const done = await this.withOpenRun(run, async (tx) => {
      const status = statusOf(tx.steps, ref);
      if (!overridable(status)) throw badRequest(`cannot force-complete step in ${status} status: only a pending or waiting step can be force-completed`);
      const row = tx.steps.find((s) => s.ref === ref);
      await tx.overrideStep(ref, def.type, 'completed', result ?? null, null, actor.name);
      await tx.record([line('warn', `Step ${ref} force-completed by ${actor.name}`)], { actor, action: 'step.force_completed', details: { step: ref } });
      return { loose: row ? looseOf(row) : { children: [] }, step: await tx.stepRow(ref) };
    });
    await this.closeLoose(done.loose, 'cancelled', actor, `step ${ref} was force-completed`);
    return done.step;
  }

  /** Runs an ended step again; an ended run reopens, a paused one resumes. */
  async retryStep(run: Run, ref: string, who: RunRequester): Promise<StepRun> {
    run = await this.withDefinition(run);
    const actor = await this.permit(run, who, 'retry');
    this.stepOf(run, ref);
    this.requireV2(run);
    return this.control.withRun(run.id, async (tx) => {
      const status = statusOf(tx.steps, ref);
      if (!TERMINAL_STEP_STATUSES.includes(status)) throw badRequest(`cannot retry step in ${status} status: only an ended step can be retried`);
      await this.restart(tx, rowsToReset(tx.run.definition.steps, tx.steps, [ref], false));
      await tx.record([line('info', `Step ${ref} retried by ${actor.name}`)], { actor, action: 'step.retried', details: { step: ref } });
      return tx.stepRow(ref);
    });
  }

  /**
   * Runs a step and everything downstream of it again; the run must be paused or ended, so no
   * step of the subtree is in flight. Checked before anything changes. Returns how many steps the
   * subtree holds.
   */
  async replaySubtree(run: Run, ref: string, who: RunRequester): Promise<number> {
    run = await this.withDefinition(run);
    const actor = await this.permit(run, who, 'retry');
    this.stepOf(run, ref);
    this.requireV2(run);
    const size = descendants(run.definition.steps, ref).size + 1;
    const loose = await this.control.withRun(run.id, async (tx) => {
      if (tx.run.status !== 'paused' && !isTerminalRun(tx.run.status))
        throw conflict(`Run ${run.id} is ${tx.run.status}: pause it first (a subtree is replayed only while nothing in it runs)`);
      const refs = rowsToReset(tx.run.definition.steps, tx.steps, [ref], true);
      const waits = tx.steps.filter((s) => refs.includes(s.ref) && s.status === 'waiting').map(looseOf);
      await this.restart(tx, refs);
      await tx.record([line('info', `Steps from ${ref} on (${size}) replayed by ${actor.name}`)], { actor, action: 'run.subtree_replayed', details: { step: ref, steps: size } });
      return waits;
    });
    for (const l of loose) await this.closeLoose(l, 'cancelled', actor, `step replayed by ${actor.name}`);
    return size;
  }

  /** A new run of an ended one: same definition, payload and step cap; its completed steps are kept with their outputs. */
  async retryRun(run: Run, who: RunRequester): Promise<Run> {
    const actor = await this.permit(run, who, 'retry');
    if (run.executionMode !== 'flow') throw badRequest(`Run ${run.id} runs in cicd mode: rerun it instead`);
    if (!isTerminalRun(run.status)) throw badRequest(`Run ${run.id} is ${run.status}: only an ended run can be retried`);
    if (!this.runs.carriesControl()) throw engineUnavailable('Run retry needs Engine v2 (FLOWGATE_ENGINE=v2)');
    return this.runs.retry(await this.withDefinition(run), who, actor);
  }

  /** Reopens an ended run or resumes a paused one, and sets the rows back to pending. */
  private async restart(tx: ControlTxPort, refs: string[]): Promise<void> {
    if (isTerminalRun(tx.run.status)) await tx.reopen();
    else if (tx.run.status === 'paused') await tx.setStatus('running');
    await tx.resetSteps(refs);
  }

  private async withOpenRun<T>(run: Run, act: (tx: ControlTxPort) => Promise<T>): Promise<T> {
    this.requireV2(run);
    return this.control.withRun(run.id, async (tx) => {
      if (isTerminalRun(tx.run.status)) throw badRequest(`Run ${run.id} has already ended (${tx.run.status})`);
      return act(tx);
    });
  }

  private async closeLoose(loose: Loose, status: 'rejected' | 'cancelled', actor: Actor, reason: string): Promise<void> {
    if (loose.approvalId) await this.approvals.closeByControl(loose.approvalId, status, actor, reason);
    if (loose.children.length) await this.runs.cancelRunsFor(loose.children, actor, reason);
  }

  private async permit(run: Run, who: RunRequester, verb: ControlVerb): Promise<Actor> {
    await this.runs.requireControl(run, who, verb);
    return actorOfRequester(who);
  }

  private requireV2(run: Run): void {
    if (run.executionMode === 'cicd') throw conflict(`Run ${run.id} runs in its CI/CD pipeline: only cancel and rerun apply to it`);
    if (run.engineVersion !== 'v2') throw conflict(`Run ${run.id} runs on the previous engine: pause, resume, skip, force-complete, step retry and replay apply to Engine v2 runs`);
  }

  private stepOf(run: Run, ref: string) {
    const def = run.definition?.steps.find((s) => s.ref === ref);
    if (!def) throw notFound(`Step ${ref} not found in workflow run ${run.id}`);
    return def;
  }

  private async reread(run: Run): Promise<Run> {
    return (await this.store.findById(run.id))!;
  }

  private async withDefinition(run: Run): Promise<Run> {
    return run.definition ? run : (await this.store.findById(run.id, true))!;
  }
}

function looseOf(row: ControlStepRow): Loose {
  if (row.status !== 'waiting') return { children: [] };
  if (row.waitingFor?.startsWith('approval:')) return { approvalId: row.waitingFor.slice('approval:'.length), children: [] };
  const children = (row.output as { children?: { id: string }[] } | null)?.children ?? [];
  return { children: children.map((c) => c.id) };
}
