import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Project } from '../../db/entities/project.js';
import { AppError, invalidContent, notFound } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import type { FlowRegistry } from '../registry/registry.js';
import { cronProblem, nextFire, timezoneProblem } from '../schedules/cron.js';
import type { ScheduleContext, SchedulePort } from '../schedules/schedule-port.js';
import { inputsOf, templateIssues, type InputIssue, type TriggerScope } from './trigger-inputs.js';
import { TriggerStore, type TriggerColumns } from './trigger-store.js';
import { DEFAULT_RATE_LIMIT, scheduleNameOf, type Trigger, type TriggerKind } from './trigger.js';
import { keyDigest, newWebhookKey } from './webhook-key.js';

/** The flow a trigger starts, resolved by the caller (a document, or a manifest flow type run in a project). */
export interface TriggerTarget {
  flowType: string;
  project: Project;
  /** The flow document's id; null for a manifest flow type. */
  documentId: string | null;
}

/** A create or a change: what the API accepts (absent keeps, `null` clears where it may). */
export interface TriggerFields {
  name?: string;
  enabled?: boolean;
  inputs?: Record<string, unknown> | null;
  cron?: string;
  timezone?: string | null;
  webhookKey?: string;
  secret?: string | null;
  rateLimitPerMinute?: number;
}

/** A trigger, with its webhook key when this call made one (shown once). */
export interface TriggerResult {
  trigger: Trigger;
  webhookKey?: string;
}

/** What a cron firing starts, read from its trigger at that moment. */
export interface CronFiring {
  flowType: string;
  repositoryIdentifier: string;
  inputs: Record<string, unknown>;
  requestedBy: string;
  /** What the execution's steps read as `trigger`. */
  trigger: TriggerScope;
}

const refuse = (issues: InputIssue[]) => invalidContent(`invalid trigger: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { errors: issues });

/**
 * Cron and webhook triggers of flows. A cron trigger is also the Flowgate schedule
 * `trigger-<id>` (fired once per tick across replicas); its firing reads the trigger's row, so
 * the row is the truth and the schedule carries only the expression, time zone and pause state.
 * Webhook keys are stored as their SHA-256 only. Every change is audited, never with a key or secret.
 */
export class TriggerService {
  readonly store: TriggerStore;

  constructor(
    orm: MikroORM,
    private readonly schedules: SchedulePort,
    private readonly registry: FlowRegistry,
    private readonly audit: AuditLog,
    private readonly log: Logger,
  ) {
    this.store = new TriggerStore(orm);
  }

  find(id: string): Promise<Trigger | null> {
    return this.store.find(id);
  }

  list(filter: { projects: readonly string[] | null; flowId?: string; type?: TriggerKind }): Promise<Trigger[]> {
    return this.store.list(filter);
  }

  /** When a cron trigger fires next (null: disabled, or not a cron trigger). */
  nextFireAt(t: Trigger): Date | null {
    return t.type === 'cron' && t.enabled && t.cron ? nextFire(t.cron, t.timezone) : null;
  }

  async create(type: TriggerKind, target: TriggerTarget, fields: TriggerFields, actor: Actor): Promise<TriggerResult> {
    const webhookKey = type === 'webhook' ? fields.webhookKey ?? newWebhookKey() : undefined;
    const columns: TriggerColumns = {
      name: fields.name ?? type, enabled: fields.enabled ?? true, inputs: fields.inputs ?? null,
      cron: type === 'cron' ? fields.cron ?? null : null, timezone: type === 'cron' ? fields.timezone ?? null : null,
      keyDigest: webhookKey === undefined ? undefined : keyDigest(webhookKey),
      secret: { set: true, value: type === 'webhook' ? fields.secret ?? null : null },
      rateLimitPerMinute: type === 'webhook' ? fields.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT : null,
    };
    this.check(type, target.flowType, columns);
    const trigger = await this.store.insert({
      id: newId(), type, flowDocumentId: target.documentId, manifestFlow: target.documentId ? null : target.flowType,
      repositoryIdentifier: target.project.repositoryIdentifier, by: actor.name, ...columns,
    });
    if (type === 'cron') {
      try {
        await this.schedules.create(scheduleNameOf(trigger.id), columns.cron!, columns.timezone, this.context(trigger, target.flowType), trigger.enabled);
      } catch (err) {
        await this.store.delete(trigger.id);
        throw err;
      }
    }
    await this.audit.record(actor, 'trigger.created', 'trigger', trigger.id, { type, flowId: trigger.flowId, namespace: trigger.namespace, name: trigger.name });
    return { trigger, webhookKey };
  }

  /** Changes a trigger (its type and flow stay); a new `webhookKey` replaces the old one at once. */
  async update(t: Trigger, fields: TriggerFields, actor: Actor): Promise<TriggerResult> {
    const has = (k: keyof TriggerFields) => fields[k] !== undefined;
    const columns: TriggerColumns = {
      name: fields.name ?? t.name, enabled: fields.enabled ?? t.enabled, inputs: has('inputs') ? fields.inputs! : t.inputs,
      cron: fields.cron ?? t.cron, timezone: has('timezone') ? fields.timezone! : t.timezone,
      keyDigest: fields.webhookKey === undefined ? undefined : keyDigest(fields.webhookKey),
      secret: has('secret') ? { set: true, value: fields.secret! } : { set: false },
      rateLimitPerMinute: fields.rateLimitPerMinute ?? t.rateLimitPerMinute,
    };
    const flowType = this.flowTypeOf(t);
    this.check(t.type, flowType, columns);
    const trigger = await this.store.update(t.id, columns, actor.name);
    if (trigger.type === 'cron') await this.syncSchedule(trigger, flowType);
    const changed = (Object.keys(fields) as (keyof TriggerFields)[]).filter(has);
    await this.audit.record(actor, 'trigger.updated', 'trigger', t.id, { changed, ...(has('secret') ? { secret: fields.secret === null ? 'removed' : 'set' } : {}) });
    return { trigger, webhookKey: fields.webhookKey };
  }

  async delete(t: Trigger, actor: Actor): Promise<void> {
    if (!(await this.store.delete(t.id))) throw notFound(`No trigger ${t.id}`);
    if (t.type === 'cron') await this.dropSchedules([t.id]);
    await this.audit.record(actor, 'trigger.deleted', 'trigger', t.id, { type: t.type, flowId: t.flowId, namespace: t.namespace, name: t.name });
  }

  /** A new server-made key for a webhook trigger: the old one stops working at once. */
  async rotateKey(t: Trigger, actor: Actor): Promise<TriggerResult> {
    if (t.type !== 'webhook') throw new AppError('conflict', `trigger ${t.id} is a ${t.type} trigger: only webhook triggers have a key`);
    const webhookKey = newWebhookKey();
    const trigger = await this.store.setKey(t.id, keyDigest(webhookKey), actor.name);
    await this.audit.record(actor, 'trigger.key_rotated', 'trigger', t.id);
    return { trigger, webhookKey };
  }

  /** The schedules of triggers whose rows are gone (their flow was deleted in the same statement). */
  async dropSchedules(triggerIds: string[]): Promise<void> {
    for (const id of triggerIds) {
      await this.schedules.delete(scheduleNameOf(id)).catch((err) =>
        // A schedule left behind removes itself at its next firing (the trigger is gone).
        this.log.warn({ triggerId: id, err: (err as Error).message }, 'trigger schedule not deleted'));
    }
  }

  /**
   * What a cron trigger's firing starts: the trigger as it is now, its inputs template rendered
   * with `trigger` = {type: cron, scheduledFor, firedAt}. 'gone' when the trigger no longer exists
   * (its schedule should go too); null when it is disabled. A template that fails is an AppError.
   */
  async cronFiring(triggerId: string, scheduledFor: Date): Promise<CronFiring | 'gone' | null> {
    const t = await this.store.cronFired(triggerId);
    if (t === 'gone' || t === null) return t;
    if (!t.flowType) return 'gone';
    const trigger: TriggerScope = { type: 'cron', triggerId, by: t.updatedBy, scheduledFor: scheduledFor.toISOString(), firedAt: new Date().toISOString() };
    return { flowType: t.flowType, repositoryIdentifier: t.repositoryIdentifier, inputs: inputsOf(t.inputs, trigger), requestedBy: t.updatedBy, trigger };
  }

  /** Forgets webhook delivery keys older than 24 h and past rate windows. */
  prune(): Promise<number> {
    return this.store.prune();
  }

  /** Content checks (422): cron and time zone, the inputs template, and for a cron the inputs it would start with now. */
  private check(type: TriggerKind, flowType: string, c: TriggerColumns): void {
    const issues: InputIssue[] = [];
    if (type === 'cron') {
      const tz = c.timezone ? timezoneProblem(c.timezone) : undefined;
      if (tz) issues.push({ path: 'timezone', message: tz });
      const cron = cronProblem(c.cron ?? '', tz ? null : c.timezone);
      if (cron) issues.push({ path: 'cron', message: cron });
    }
    if (c.inputs) issues.push(...templateIssues(c.inputs));
    if (issues.length) throw refuse(issues);
    // A cron trigger's inputs do not depend on a request: check them against the flow now rather than at 2 a.m.
    const def = this.registry.find(flowType);
    if (type !== 'cron' || !def) return;
    try {
      this.registry.applyParameters(def, inputsOf(c.inputs, { type: 'cron', triggerId: '', by: '', scheduledFor: new Date().toISOString(), firedAt: new Date().toISOString() }), 'inputs');
    } catch (err) {
      if (err instanceof AppError && err.code === 'bad_request') throw refuse(err.details.map((d) => ({ path: d.field, message: d.message })));
      throw err;
    }
  }

  /** The schedule follows its trigger: expression, time zone, pause state (created again if it went missing). */
  private async syncSchedule(t: Trigger, flowType: string): Promise<void> {
    const name = scheduleNameOf(t.id);
    const context = this.context(t, flowType);
    const existing = await this.schedules.get(name);
    if (!existing) return this.schedules.create(name, t.cron!, t.timezone, context, t.enabled);
    await this.schedules.update(name, { expression: t.cron!, timezone: t.timezone, context });
    if (existing.enabled !== t.enabled) await (t.enabled ? this.schedules.resume(name) : this.schedules.pause(name));
  }

  /** What the schedule shows (`/schedules` lists it); its firing reads the trigger itself. */
  private context(t: Trigger, flowType: string): ScheduleContext {
    return {
      name: scheduleNameOf(t.id), flowType, repositoryIdentifier: t.repositoryIdentifier, payload: t.inputs ?? {},
      source: 'trigger', triggerId: t.id, requestedBy: t.updatedBy,
    };
  }

  /** The flow type a trigger starts now (a document's current name). */
  private flowTypeOf(t: Trigger): string {
    if (!t.flowDocumentId) return t.flowId;
    return this.registry.list().find((d) => d.document?.id === t.flowDocumentId)?.id ?? t.flowId;
  }
}
