import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import type { ScheduleContext, SchedulePort, StoredSchedule } from '../core/schedules/schedule-port.js';
import { idFrom } from '../core/ids.js';
import { AppError } from '../errors.js';
import type { EngineDeps } from './engine-deps.js';
import { runWorkflow } from './workflows.js';

let deps: EngineDeps | undefined;
export function setScheduleDeps(d: EngineDeps): void { deps = d; }

/** What one firing starts: a flow type for these projects, each with its payload and requester. */
interface FiringPlan {
  flowType: string;
  targets: { repo: string; payload: Record<string, unknown>; requestedBy: string | null; trigger?: Record<string, unknown> }[];
  /** Set for a cron trigger's schedule. */
  triggerId?: string;
}

/**
 * Who a firing runs for. A plain schedule: its project, or every project with the flow type
 * enabled. A cron trigger's (`source: trigger`): its trigger as it is now, inputs rendered;
 * 'gone' when the trigger was deleted (its schedule then deletes itself).
 */
async function plan(d: EngineDeps, scheduledDate: Date, context: ScheduleContext): Promise<FiringPlan | 'gone' | null> {
  if (context.source === 'trigger' && context.triggerId) {
    try {
      const f = await d.triggers.cronFiring(context.triggerId, new Date(scheduledDate));
      if (f === 'gone' || f === null) return f;
      return { flowType: f.flowType, triggerId: context.triggerId, targets: [{ repo: f.repositoryIdentifier, payload: f.inputs, requestedBy: f.requestedBy, trigger: f.trigger }] };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      DBOS.logger.warn(`schedule ${context.name}: not starting: ${err.message}`);
      return null;
    }
  }
  const payload = { ...context.payload };
  const requestedBy = context.requestedBy ?? null;
  if (context.repositoryIdentifier) return { flowType: context.flowType, targets: [{ repo: context.repositoryIdentifier, payload, requestedBy }] };
  const projects = await d.projects.list(null);
  return {
    flowType: context.flowType,
    targets: projects.filter((p) => !(p.settings.disabledFlowTypes ?? []).includes(context.flowType)).map((p) => ({ repo: p.repositoryIdentifier, payload, requestedBy })),
  };
}

/**
 * One firing of a schedule. The engine gives every firing a deterministic workflow id, so two
 * replicas never start it twice; run ids derive from that id, so a replay creates nothing new.
 */
async function firedImpl(scheduledDate: Date, context: ScheduleContext): Promise<void> {
  const d = deps!;
  const firing = DBOS.workflowID!;
  const scheduleName = context.name;
  const planned = await durableStep(() => plan(d, scheduledDate, context), { name: 'targets' });
  if (planned === 'gone') {
    await dbosSchedules.delete(scheduleName);
    return;
  }
  if (!planned) return;
  for (const target of planned.targets) {
    const repo = target.repo;
    const run = await durableStep(async () => {
      try {
        const prepared = await d.runs.prepare({
          id: idFrom(`${firing}|${repo}`), payload: { ...target.payload, id: planned.flowType }, repositoryIdentifier: repo,
          triggeredBy: 'cron', requestedBy: target.requestedBy, schedulePath: scheduleName,
          trigger: target.trigger ?? { type: 'cron', by: target.requestedBy, schedule: scheduleName, scheduledFor: new Date(scheduledDate).toISOString() },
        });
        await d.store.insert(prepared).catch((err: { code?: string }) => { if (err.code !== '23505') throw err; });
        await d.audit.record({ name: 'cron', door: 'schedule' }, 'run.started', 'run', prepared.id,
          { schedule: scheduleName, scheduledFor: new Date(scheduledDate).toISOString(), ...(planned.triggerId ? { trigger: planned.triggerId } : {}) });
        return { id: prepared.id, engineRunId: prepared.engineRunId };
      } catch (err) {
        if (err instanceof AppError) {
          DBOS.logger.warn(`schedule ${scheduleName}: not starting ${planned.flowType} for ${repo}: ${err.message}`);
          return null;
        }
        throw err;
      }
    }, { name: `start-${repo}` });
    if (!run) continue;
    await DBOS.startWorkflow(runWorkflow, { workflowID: run.engineRunId })(run.id);
  }
}

export const scheduledWorkflow = DBOS.registerWorkflow(firedImpl, { name: 'flowgate.scheduled' });

/** The schedule store on DBOS's dynamic schedules. */
export const dbosSchedules: SchedulePort = {
  async list() {
    return (await DBOS.listSchedules({ workflowName: 'flowgate.scheduled' })).map(toStored);
  },
  async get(name) {
    const s = await DBOS.getSchedule(name);
    return s ? toStored(s) : null;
  },
  async create(name, expression, timezone, context, enabled) {
    await DBOS.createSchedule({ scheduleName: name, workflowFn: scheduledWorkflow, schedule: expression, context, options: timezone ? { cronTimezone: timezone } : {} });
    if (!enabled) await DBOS.pauseSchedule(name);
  },
  async update(name, changes) {
    await DBOS.updateSchedule(name, {
      ...(changes.expression ? { schedule: changes.expression } : {}),
      ...(changes.timezone !== undefined ? { cronTimezone: changes.timezone } : {}),
      ...(changes.context ? { context: changes.context } : {}),
    });
  },
  pause: (name) => DBOS.pauseSchedule(name),
  resume: (name) => DBOS.resumeSchedule(name),
  delete: (name) => DBOS.deleteSchedule(name),
};

function toStored(s: Awaited<ReturnType<typeof DBOS.getSchedule>> & object): StoredSchedule {
  return {
    name: s.scheduleName, expression: s.schedule, timezone: s.cronTimezone, enabled: s.status === 'ACTIVE',
    lastFiredAt: s.lastFiredAt, context: s.context as ScheduleContext,
  };
}
