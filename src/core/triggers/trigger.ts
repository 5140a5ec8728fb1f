/** What starts a trigger's executions: a cron schedule or a webhook. */
export const TRIGGER_KINDS = ['cron', 'webhook'] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];

/** Requests a webhook trigger accepts per minute unless it says otherwise, and at most. */
export const DEFAULT_RATE_LIMIT = 60;
export const MAX_RATE_LIMIT = 600;

/** A trigger as the API shows it (never its webhook key or secret: only whether it has one). */
export interface Trigger {
  id: string;
  type: TriggerKind;
  name: string;
  /** The flow document's id, or the manifest flow type's. */
  flowId: string;
  /** Set when the flow is a document (the trigger goes with it). */
  flowDocumentId: string | null;
  repositoryIdentifier: string;
  namespace: string;
  enabled: boolean;
  /** The inputs template; null: a webhook's body is the inputs (a cron's are empty). */
  inputs: Record<string, unknown> | null;
  cron: string | null;
  timezone: string | null;
  hasSecret: boolean;
  rateLimitPerMinute: number | null;
  lastFiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string;
  updatedBy: string;
}

const SCHEDULE_PREFIX = 'trigger-';

/** A cron trigger is the Flowgate schedule of this name. */
export const scheduleNameOf = (triggerId: string) => `${SCHEDULE_PREFIX}${triggerId}`;

/** The trigger a schedule name stands for, or null for other schedules. */
export const triggerIdOfSchedule = (name: string | null | undefined): string | null =>
  name?.startsWith(SCHEDULE_PREFIX) ? name.slice(SCHEDULE_PREFIX.length) : null;

/** What a webhook trigger's runs carry as `triggeredBy` (its requester is the trigger's last editor). */
export const WEBHOOK_STARTER_PREFIX = 'webhook:';
export const webhookStarter = (triggerId: string) => `${WEBHOOK_STARTER_PREFIX}${triggerId}`;
