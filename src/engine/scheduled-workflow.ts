import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import type { ScheduleContext, SchedulePort, StoredSchedule } from '../core/schedules/schedule-port.js';
import { idFrom } from '../core/ids.js';
import { AppError } from '../errors.js';
import type { EngineDeps } from './engine-deps.js';
import { runWorkflow } from './workflows.js';

let deps: EngineDeps | undefined;
export function setScheduleDeps(d: EngineDeps): void { deps = d; }

/**
 * One firing of a schedule. The engine gives every firing a deterministic workflow id, so two
 * replicas never start it twice; run ids derive from that id, so a replay creates nothing new.
 */
async function firedImpl(scheduledDate: Date, context: ScheduleContext): Promise<void> {
  const d = deps!;
  const firing = DBOS.workflowID!;
  const scheduleName = context.name;
  const targets = await durableStep(async () => {
    if (context.repositoryIdentifier) return [context.repositoryIdentifier];
    const projects = await d.projects.list(null);
    return projects.filter((p) => !(p.settings.disabledFlowTypes ?? []).includes(context.flowType)).map((p) => p.repositoryIdentifier);
  }, { name: 'targets' });
  for (const repo of targets) {
    const run = await durableStep(async () => {
      try {
        const prepared = await d.runs.prepare({
          id: idFrom(`${firing}|${repo}`), payload: { ...context.payload, id: context.flowType }, repositoryIdentifier: repo,
          triggeredBy: 'cron', requestedBy: context.requestedBy ?? null, schedulePath: scheduleName,
        });
        await d.store.insert(prepared).catch((err: { code?: string }) => { if (err.code !== '23505') throw err; });
        await d.audit.record({ name: 'cron', door: 'schedule' }, 'run.started', 'run', prepared.id, { schedule: scheduleName, scheduledFor: new Date(scheduledDate).toISOString() });
        return { id: prepared.id, engineRunId: prepared.engineRunId };
      } catch (err) {
        if (err instanceof AppError) {
          DBOS.logger.warn(`schedule ${scheduleName}: not starting ${context.flowType} for ${repo}: ${err.message}`);
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
