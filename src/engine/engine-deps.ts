import type { ApprovalService } from '../core/approvals/approval-service.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import type { RunLogs } from '../core/logs/run-logs.js';
import type { Notifier } from '../core/notify/notifier.js';
import type { ProjectService } from '../core/projects/projects.js';
import type { RunService } from '../core/runs/run-service.js';
import type { RunStore } from '../core/runs/run-store.js';
import type { TriggerService } from '../core/triggers/trigger-service.js';

/** The services the workflows use; handed over once, before the engine launches. */
export interface EngineDeps {
  store: RunStore;
  runs: RunService;
  logs: RunLogs;
  projects: ProjectService;
  notifier: Notifier;
  approvals: ApprovalService;
  audit: AuditLog;
  /** Cron triggers: what a `trigger-<id>` schedule's firing starts (read from the trigger then). */
  triggers: Pick<TriggerService, 'cronFiring'>;
  credentials: Record<string, string>;
  /** The credentials a step runs with (env and the stored ones its input names), decrypted when it runs. */
  stepCredentials?(repositoryIdentifier: string, stepInput: unknown): Promise<Record<string, string>>;
  /** fetch for addresses a flow or payload chose: checked against FLOWGATE_OUTBOUND_ALLOW (core/net). */
  outboundFetch: typeof fetch;
  runFinished(runId: string, status: string): void;
  /** The run waits for a person or an event: it no longer needs a launch slot. */
  runParked(runId: string): void;
}
