import { z } from 'zod';
import { MAX_RATE_LIMIT, TRIGGER_KINDS } from '../../core/triggers/trigger.js';
import { GIVEN_KEY } from '../../core/triggers/webhook-key.js';

/** Fields only one kind of trigger has. */
export const CRON_FIELDS = ['cron', 'timezone'] as const;
export const WEBHOOK_FIELDS = ['webhookKey', 'secret', 'rateLimitPerMinute'] as const;
export const foreignFields = (type: 'cron' | 'webhook') => (type === 'cron' ? WEBHOOK_FIELDS : CRON_FIELDS);

const fields = {
  flowId: z.string().min(1).max(200),
  type: z.enum(TRIGGER_KINDS),
  name: z.string().trim().min(1).max(100),
  namespace: z.string().min(1).max(63),
  enabled: z.boolean(),
  /** A template (`{{ trigger.body.x }}`); null: a webhook's body is the inputs. */
  inputs: z.record(z.string(), z.unknown()).nullable(),
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(100).nullable(),
  webhookKey: z.string().regex(GIVEN_KEY, '32 to 128 characters of A-Z, a-z, 0-9, _ and -'),
  secret: z.string().min(16, 'at least 16 characters').max(1024).nullable(),
  rateLimitPerMinute: z.number().int().min(1).max(MAX_RATE_LIMIT),
};

const all = z.strictObject({
  flowId: fields.flowId, type: fields.type, name: fields.name.optional(), namespace: fields.namespace.optional(), enabled: fields.enabled.optional(),
  inputs: fields.inputs.optional(), cron: fields.cron.optional(), timezone: fields.timezone.optional(),
  webhookKey: fields.webhookKey.optional(), secret: fields.secret.optional(), rateLimitPerMinute: fields.rateLimitPerMinute.optional(),
});

/** `POST /triggers`: a cron needs `cron`; neither kind takes the other's fields. */
export const createTriggerBody = all.superRefine((b, ctx) => {
  for (const k of foreignFields(b.type)) if (b[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `not a field of ${b.type} triggers` });
  if (b.type === 'cron' && b.cron === undefined) ctx.addIssue({ code: 'custom', path: ['cron'], message: 'required for a cron trigger' });
});

/** `PUT /triggers/{id}`: the same fields, each optional (absent keeps; `type`, `flowId` and `namespace` must stay). */
export const updateTriggerBody = all.partial();

export const triggerParams = z.strictObject({ id: z.string().min(1).max(200) });

export const listTriggersQuery = z.strictObject({ flowId: fields.flowId.optional(), type: fields.type.optional() });

/** Any string: every key takes the same path to its answer (see the webhook route). */
export const webhookParams = z.object({ key: z.string() });

const when = z.string().nullable();

/** Documentation of the answers (/openapi.json). */
export const triggerSchema = z.object({
  id: z.string(), flowId: z.string(), namespace: z.string(), name: z.string(), type: z.enum(TRIGGER_KINDS),
  cron: z.string().optional(), timezone: z.string().optional(), nextFireAt: when.optional(),
  webhookKey: z.string().nullable().optional(), webhookUrl: z.string().nullable().optional(), hasSecret: z.boolean().optional(), rateLimitPerMinute: z.number().int().optional(),
  enabled: z.boolean(), inputs: z.record(z.string(), z.unknown()).nullable(), lastFiredAt: when, createdAt: z.string(), updatedAt: z.string(), createdBy: z.string(), updatedBy: z.string(),
});

export const webhookStartedSchema = z.object({ executionId: z.string(), status: z.string(), tasksTotal: z.number().int() });
