import { z } from 'zod';
import { pluginFor, unknownPluginMessage } from '../../plugins/catalogue.js';
import { cicdTargetSchema } from './cicd-target.js';

export const CATEGORIES = [
  'access', 'environment', 'release', 'package', 'pool', 'testing', 'build', 'repository', 'scheduled', 'cascade', 'other',
] as const;
/** The kinds the previous engine runs, by the names it knows them by (the plugin catalogue has them all). */
export const STEP_KINDS = ['log', 'http.request', 'sleep', 'wait_for_event', 'flow', 'notify', 'approval'] as const;
export type StepKindName = (typeof STEP_KINDS)[number];

const identifier = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes');
const stepRef = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'letters, digits, _ and -, starting with a letter');

/** `30`, `"30s"`, `"5m"`, `"2h"` → seconds. */
export const durationSeconds = z.union([
  z.number().positive(),
  z.string().regex(/^\d+(\.\d+)?[smh]$/, 'a number of seconds or a duration like "30s", "5m", "2h"')
    .transform((v) => Number(v.slice(0, -1)) * { s: 1, m: 60, h: 3600 }[v.slice(-1) as 's' | 'm' | 'h']),
]);

export const parameterSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a valid identifier'),
  type: z.enum(['string', 'number', 'boolean', 'object', 'array']).default('string'),
  required: z.boolean().default(false),
  default: z.unknown().optional(),
  description: z.string().default(''),
  enum: z.array(z.union([z.string(), z.number()])).optional(),
});
export type Parameter = z.infer<typeof parameterSchema>;

const retrySchema = z.union([
  z.number().int().min(0).max(20).transform((attempts) => ({ attempts, backoffSeconds: 1, factor: 2 })),
  z.strictObject({
    attempts: z.number().int().min(0).max(20),
    backoffSeconds: z.number().min(0).default(1),
    factor: z.number().min(1).default(2),
  }),
]);

export const stepSchema = z.strictObject({
  ref: stepRef,
  /** A plugin id or alias; stored as the plugin's engine name (the name runs in flight know). */
  type: z.string().transform((name, ctx) => {
    const p = pluginFor(name);
    if (p) return p.engineName;
    ctx.addIssue({ code: 'custom', message: unknownPluginMessage(name) });
    return z.NEVER;
  }),
  name: z.string().optional(),
  dependsOn: z.array(stepRef).default([]),
  if: z.string().min(1).optional(),
  with: z.record(z.string(), z.unknown()).default({}),
  retry: retrySchema.optional(),
  timeout: durationSeconds.optional(),
  /**
   * `compensate` fails the run like `fail_workflow`, and also runs this step's own compensation
   * although the step did not complete (its failure may have left a partial effect).
   */
  onFailure: z.enum(['fail_workflow', 'skip_dependents', 'continue', 'compensate']).default('fail_workflow'),
  /**
   * Makes this step the compensation of another: off the normal path, it runs only when the run
   * fails (or is cancelled) after that step completed, in reverse dependency order.
   */
  compensates: stepRef.optional(),
}).transform((s) => {
  // `flow.subflow` in the platform's spelling (`{flow, inputs}`) is the manifest's `{type, payload}`.
  if (s.type !== 'flow' || !('flow' in s.with || 'inputs' in s.with)) return s;
  const { flow, inputs, ...rest } = s.with;
  return { ...s, with: { ...rest, ...(flow !== undefined ? { type: flow } : {}), ...(inputs !== undefined ? { payload: inputs } : {}) } };
});
export type StepDefinition = z.infer<typeof stepSchema>;

export { cicdTargetSchema };

export const scheduleSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes (at most 63)'),
  cron: z.string().min(1),
  timezone: z.string().optional(),
  /** The project to run for; without it the schedule runs for every project that has the flow type enabled. */
  repositoryIdentifier: z.string().optional(),
  payload: z.record(z.string(), z.unknown()).default({}),
  /** Ship a schedule paused: an operator resumes it once its flow is configured. */
  enabled: z.boolean().default(true),
});
export type ScheduleDefinition = z.infer<typeof scheduleSchema>;

export const manifestSchema = z
  .strictObject({
    id: identifier,
    name: z.string().min(1),
    description: z.string().default(''),
    category: z.enum(CATEGORIES).default('other'),
    executionMode: z.enum(['flow', 'cicd']).default('flow'),
    parameters: z.array(parameterSchema).default([]),
    steps: z.array(stepSchema).default([]),
    /** Steps running at once in one run; 0 = no cap. A step over the cap waits for a free slot. */
    maxParallelSteps: z.number().int().min(0).optional(),
    /** The run's time limit: past it the run ends `timed_out`, its steps and waits cancelled (compensations run). */
    timeout: durationSeconds.optional(),
    cicd: cicdTargetSchema.optional(),
    /** Templates evaluated when the run completes; their values become the run's result. */
    outputs: z.record(z.string(), z.unknown()).optional(),
    schedules: z.array(scheduleSchema).default([]),
  })
  .superRefine((m, ctx) => {
    if (m.executionMode === 'flow' && m.steps.length === 0)
      ctx.addIssue({ code: 'custom', path: ['steps'], message: 'a flow-mode manifest needs at least one step' });
    if (m.executionMode === 'cicd' && !m.cicd)
      ctx.addIssue({ code: 'custom', path: ['cicd'], message: 'a cicd-mode manifest needs a cicd target' });
    const names = new Set<string>();
    m.parameters.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['parameters', i, 'name'], message: `duplicate parameter "${p.name}"` });
      names.add(p.name);
    });
  });

/** Where a flow type defined by a flow document came from; absent for manifest files. */
export interface DocumentOrigin {
  id: string;
  namespace: string;
  repositoryIdentifier: string;
  revision: number;
}

export type FlowDefinition = z.infer<typeof manifestSchema> & {
  /** Set on flow types that are flow documents (`<namespace>:<name>`): they run in their project only. */
  document?: DocumentOrigin;
};
