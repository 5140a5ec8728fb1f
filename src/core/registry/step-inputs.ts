import { z } from 'zod';
import { GROUP_NAME, GROUP_PREFIX } from '../approvals/approver-policy.js';
import type { StepKindName } from './manifest-schema.js';

/**
 * The `with` block of each step kind, after its templates are rendered. At load time only
 * the keys are checked (values may still be templates); at run time the rendered block is parsed.
 */
const seconds = z.coerce.number().positive();
const approverEntry = z.union([
  z.literal('owners'),
  z.string().regex(new RegExp(`^${GROUP_PREFIX}${GROUP_NAME.source.slice(1)}`), 'group:<name>'),
  z.email(),
], { error: 'an email, "owners" or "group:<name>"' });
export const stepInputs = {
  log: z.strictObject({
    message: z.string(),
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  }),
  'http.request': z.strictObject({
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('GET'),
    url: z.url({ protocol: /^https?$/ }),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.unknown().optional(),
    timeoutSeconds: seconds.default(30),
  }),
  sleep: z
    .strictObject({ seconds: seconds.optional(), minutes: seconds.optional(), until: z.iso.datetime({ offset: true }).optional() })
    .refine((w) => [w.seconds, w.minutes, w.until].filter((v) => v !== undefined).length === 1, {
      message: 'give exactly one of seconds, minutes or until',
    }),
  wait_for_event: z.strictObject({
    event: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : -'),
    timeoutSeconds: seconds.optional(),
  }),
  flow: z.strictObject({
    type: z.string().min(1),
    payload: z.record(z.string(), z.unknown()).default({}),
    /** Fan-out: one child run per item; `item` is in scope of the payload templates. */
    forEach: z.array(z.unknown()).max(100, 'at most 100 child runs per step').optional(),
  }),
  notify: z.strictObject({ message: z.string() }),
  approval: z.strictObject({
    /** `owners` (the default), `group:<name>` (a project approver group), or a list of emails, `owners` and groups. */
    approvers: z.union([approverEntry, z.array(approverEntry), z.null()], { error: 'an email, "owners" or "group:<name>", or a list of them' }).default('owners'),
    quorum: z.coerce.number().int().min(1).max(50).default(1),
    allowSelfApproval: z.boolean().default(false),
    timeoutHours: z.coerce.number().positive().max(24 * 90).default(24),
    message: z.string().optional(),
    context: z.record(z.string(), z.unknown()).default({}),
  }),
} satisfies Record<StepKindName, z.ZodType>;

export type StepInput<K extends StepKindName> = z.infer<(typeof stepInputs)[K]>;

/** Load-time check of a step's `with` keys: unknown keys and missing required keys. */
export function withKeyProblems(kind: string, schema: z.ZodType, value: Record<string, unknown>): { key: string; message: string }[] {
  const shape = objectShape(schema);
  // Unions (one shape per operation) are checked when the step runs, against the rendered block.
  if (!shape) return [];
  const problems: { key: string; message: string }[] = [];
  for (const key of Object.keys(value)) {
    if (!(key in shape)) problems.push({ key, message: `unknown key for a ${kind} step (allowed: ${Object.keys(shape).join(', ')})` });
  }
  for (const [key, field] of Object.entries(shape)) {
    if (!field.safeParse(undefined).success && !(key in value)) problems.push({ key, message: `required for a ${kind} step` });
  }
  if (kind === 'sleep' && ['seconds', 'minutes', 'until'].filter((k) => k in value).length !== 1)
    problems.push({ key: 'seconds', message: 'give exactly one of seconds, minutes or until' });
  return problems;
}

/** The keys of an object schema, also under a refinement (`.refine` wraps it in a pipe); null for other schemas. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | null {
  if (schema instanceof z.ZodObject) return schema.shape as Record<string, z.ZodType>;
  const inner = (schema as unknown as { def: { in?: z.ZodType } }).def.in;
  return inner ? objectShape(inner) : null;
}

/** A step's rendered `with` that does not fit its kind: the message names each field. */
export class InvalidStepInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStepInput';
  }
}

/** Parses a step's rendered `with` block; throws InvalidStepInput naming what is wrong. */
export function parseStepInput<K extends StepKindName>(kind: K, rendered: unknown): StepInput<K> {
  const parsed = stepInputs[kind].safeParse(rendered);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InvalidStepInput(`invalid input for ${kind} step: ${why}`);
  }
  return parsed.data as StepInput<K>;
}
