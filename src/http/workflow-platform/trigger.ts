import { triggerIdOfSchedule, WEBHOOK_STARTER_PREFIX } from '../../core/triggers/trigger.js';
import type { Run } from '../../db/entities/run.js';
import { sqlList } from '../../db/sql.js';

/** What started an execution, in this API's words. */
export const TRIGGER_TYPES = ['manual', 'webhook', 'cron', 'retry', 'subflow', 'slack', 'github', 'azure-devops', 'api'] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];

/**
 * How a run's trigger type is derived: the first rule whose condition (SQL on the columns of
 * `runs`) holds, else `api`. The only place of this mapping; the list filter and every execution
 * read it from SQL. A retry keeps its parent, so it is tested first; a child inherits its parent's
 * `triggered_by` (`cron` included), so `subflow` comes before `cron`. A run started from a door
 * carries that door's callback. Otherwise a person (an email, or a platform account
 * `user:<name>`) is `manual` and a token without a person (`app:<name>`, `token:<name>`) is `api`.
 * A webhook trigger's runs carry `webhook:<trigger id>` (a cron trigger's: its schedule `trigger-<id>`).
 */
const RULES: readonly { type: TriggerType; when: string }[] = [
  { type: 'retry', when: `rerun_type = 'retry'` },
  { type: 'subflow', when: 'parent_run_id is not null' },
  { type: 'cron', when: `schedule_path is not null or triggered_by = 'cron'` },
  { type: 'webhook', when: `triggered_by like '${WEBHOOK_STARTER_PREFIX}%'` },
  { type: 'slack', when: `callback->>'type' = 'slack'` },
  { type: 'github', when: `callback->>'type' = 'github'` },
  { type: 'azure-devops', when: `callback->>'type' = 'azure-devops'` },
  { type: 'manual', when: `triggered_by ~ '^[^\\s@]+@[^\\s@]+$' or triggered_by like 'user:%'` },
];

/** SQL: the trigger type of the run whose columns are in scope (qualified by `alias` when given). */
export function triggerTypeSql(alias = ''): string {
  const col = (when: string) => (alias ? when.replace(/\b(rerun_type|parent_run_id|schedule_path|triggered_by|callback)\b/g, `${alias}.$1`) : when);
  return `(case ${RULES.map((r) => `when ${col(r.when)} then '${r.type}'`).join(' ')} else 'api' end)`;
}

/** A list filter: runs whose trigger type is one of `types`. */
export const triggerCondition = (types: readonly TriggerType[]) => ({ sql: `${triggerTypeSql()} in (${sqlList(types)})`, params: [] });

/** The trigger behind a run of this type: a webhook trigger's id, a cron trigger's id (or the plain schedule's name); else null. */
export function triggerIdOf(run: Pick<Run, 'triggeredBy' | 'schedulePath'>, type: TriggerType): string | null {
  if (type === 'webhook') return run.triggeredBy.slice(WEBHOOK_STARTER_PREFIX.length);
  if (type === 'cron') return triggerIdOfSchedule(run.schedulePath) ?? run.schedulePath ?? null;
  return null;
}
