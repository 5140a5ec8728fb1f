import { badRequest, conflict, notFound } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import type { ProjectService } from '../projects/projects.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import type { FlowRegistry } from '../registry/registry.js';
import type { RunStore } from '../runs/run-store.js';
import { cronProblem, nextFire, timezoneProblem } from './cron.js';
import type { ScheduleContext, SchedulePort, StoredSchedule } from './schedule-port.js';

export interface NewSchedule {
  name: string;
  flowType: string;
  cron: string;
  timezone?: string | null;
  repositoryIdentifier: string;
  payload: Record<string, unknown>;
  enabled: boolean;
}

/** Cron schedules: declared in manifests or added per project; fired by the engine. */
export class ScheduleService {
  constructor(
    private readonly port: SchedulePort,
    private readonly registry: FlowRegistry,
    private readonly projects: ProjectService,
    private readonly store: RunStore,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Applies manifest schedules at start. A schedule changed through the API (paused, new
   * expression) keeps that change until its manifest's own expression changes.
   */
  async syncManifests(defs: FlowDefinition[]): Promise<void> {
    const declared = new Set<string>();
    for (const def of defs) {
      for (const sc of def.schedules) {
        declared.add(sc.name);
        const context: ScheduleContext = {
          name: sc.name, flowType: def.id, repositoryIdentifier: sc.repositoryIdentifier ?? null, payload: sc.payload,
          source: 'manifest', manifestCron: sc.cron, manifestTimezone: sc.timezone ?? null,
        };
        const existing = await this.port.get(sc.name);
        if (!existing) {
          await this.port.create(sc.name, sc.cron, sc.timezone ?? null, context, sc.enabled).catch(ignoreDuplicate);
        } else if (existing.context.manifestCron !== sc.cron || (existing.context.manifestTimezone ?? null) !== (sc.timezone ?? null)) {
          await this.port.update(sc.name, { expression: sc.cron, timezone: sc.timezone ?? null, context });
        }
      }
    }
    for (const s of await this.port.list()) {
      if (s.context.source === 'manifest' && !declared.has(s.name)) await this.port.delete(s.name);
    }
  }

  async list(repositoryIdentifier: string | undefined, visible: string[] | null) {
    const all = await this.port.list();
    const shown = all.filter((s) => {
      const repo = s.context.repositoryIdentifier;
      if (repositoryIdentifier && repo && repo !== repositoryIdentifier) return false;
      return !repo || visible === null || visible.includes(repo);
    });
    return Promise.all(shown.sort((a, b) => a.name.localeCompare(b.name)).map((s) => this.view(s, repositoryIdentifier)));
  }

  async view(s: StoredSchedule, repositoryIdentifier?: string) {
    const last = await this.store.lastRunOfSchedule(s.name, repositoryIdentifier);
    return {
      name: s.name,
      workflowName: s.context.flowType,
      flowType: s.context.flowType,
      repositoryIdentifier: s.context.repositoryIdentifier,
      expression: s.expression,
      timezone: s.timezone ?? 'UTC',
      enabled: s.enabled,
      nextFireAt: s.enabled ? nextFire(s.expression, s.timezone)?.toISOString() ?? null : null,
      lastFiredAt: s.lastFiredAt,
      lastRun: last ? { id: last.id, status: last.status, createdAt: last.createdAt.toISOString() } : null,
      payload: s.context.payload,
      source: s.context.source,
      /** Who created or last changed it: its runs' requester for approvals. */
      requestedBy: s.context.requestedBy ?? null,
    };
  }

  async get(name: string): Promise<StoredSchedule> {
    const s = await this.port.get(name);
    if (!s || s.context?.flowType === undefined) throw notFound(`Cron schedule ${name} not found`);
    return s;
  }

  async setEnabled(name: string, enabled: boolean, actor: Actor) {
    const s = await this.get(name);
    refuseTriggerSchedule(s);
    await (enabled ? this.port.resume(name) : this.port.pause(name));
    await this.port.update(name, { context: { ...s.context, requestedBy: actor.name } });
    await this.audit.record(actor, enabled ? 'schedule.resumed' : 'schedule.paused', 'schedule', name);
    return this.view(await this.get(name));
  }

  /** New expression, same input. `workflowName` must be the flow the schedule runs. */
  async updateExpression(name: string, workflowName: string, expression: string, actor: Actor) {
    const s = await this.get(name);
    refuseTriggerSchedule(s);
    if (workflowName !== s.context.flowType)
      throw badRequest(`Schedule ${name} runs ${s.context.flowType}, not ${workflowName}`, [{ field: 'workflowName', message: `must be ${s.context.flowType}`, location: 'body' }]);
    const problem = cronProblem(expression, s.timezone);
    if (problem) throw badRequest(`Invalid cron expression "${expression}": ${problem}`, [{ field: 'expression', message: problem, location: 'body' }]);
    await this.port.update(name, { expression, context: { ...s.context, requestedBy: actor.name } });
    await this.audit.record(actor, 'schedule.updated', 'schedule', name, { from: s.expression, to: expression });
    return this.view(await this.get(name));
  }

  async create(input: NewSchedule, actor: Actor) {
    const def = this.registry.find(input.flowType);
    if (!def) throw badRequest(`Unknown flow type "${input.flowType}"`, [{ field: 'flowType', message: 'unknown flow type', location: 'body' }]);
    if (!(await this.projects.find(input.repositoryIdentifier)))
      throw badRequest(`Unknown project ${input.repositoryIdentifier}`, [{ field: 'repositoryIdentifier', message: 'not registered', location: 'body' }]);
    const tz = input.timezone ? timezoneProblem(input.timezone) : undefined;
    if (tz) throw badRequest(tz, [{ field: 'timezone', message: tz, location: 'body' }]);
    const problem = cronProblem(input.cron, input.timezone);
    if (problem) throw badRequest(`Invalid cron expression "${input.cron}": ${problem}`, [{ field: 'cron', message: problem, location: 'body' }]);
    this.registry.applyParameters(def, input.payload);
    if (await this.port.get(input.name)) throw conflict(`A schedule named ${input.name} already exists`);
    const context: ScheduleContext = { name: input.name, flowType: def.id, repositoryIdentifier: input.repositoryIdentifier, payload: input.payload, source: 'api', requestedBy: actor.name };
    await this.port.create(input.name, input.cron, input.timezone ?? null, context, input.enabled);
    await this.audit.record(actor, 'schedule.created', 'schedule', input.name, { flowType: def.id, cron: input.cron, repositoryIdentifier: input.repositoryIdentifier });
    return this.view(await this.get(input.name));
  }

  async delete(name: string, actor: Actor): Promise<void> {
    const s = await this.get(name);
    refuseTriggerSchedule(s);
    if (s.context.source === 'manifest') throw badRequest(`Schedule ${name} is declared in the ${s.context.flowType} manifest; pause it instead`);
    await this.port.delete(name);
    await this.audit.record(actor, 'schedule.deleted', 'schedule', name);
  }
}

/** A cron trigger's schedule follows its trigger: changed there only, or the two would disagree. */
function refuseTriggerSchedule(s: StoredSchedule): void {
  if (s.context.source === 'trigger')
    throw badRequest(`Schedule ${s.name} is the cron trigger ${s.context.triggerId}: change it with PUT or DELETE /api/v1/triggers/${s.context.triggerId}`);
}

const ignoreDuplicate = (err: { code?: string; message?: string }) => {
  // Another replica created it at the same moment.
  if (err.code !== '23505' && !/already exists|duplicate key/i.test(err.message ?? '')) throw err;
};
