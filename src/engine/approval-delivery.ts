import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import { presentApproval } from '../core/approvals/present-approval.js';
import type { ApprovalService } from '../core/approvals/approval-service.js';
import type { Notifier } from '../core/notify/notifier.js';
import type { ProjectService } from '../core/projects/projects.js';
import { OutboundRefused } from '../core/net/guarded-fetch.js';
import { messageOf } from './step-failure.js';

const MAX_ATTEMPTS = 60;
const MAX_BACKOFF_MS = 10 * 60_000;

interface DeliveryDeps { approvals: ApprovalService; projects: ProjectService; notifier: Notifier; webhookSecret?: string }
let deps: DeliveryDeps | undefined;
export function setDeliveryDeps(d: DeliveryDeps): void { deps = d; }

/**
 * Delivers an external approval's decision to its webhook (a caller-chosen URL, so through the
 * outbound guard), signed for `approval.decision`, retrying with backoff (1 s doubling to 10 min,
 * for hours) until the receiver accepts it. A refused address or a callback that cannot be
 * delivered to is final. Durable: a restart resumes it.
 */
async function deliverApprovalImpl(approvalId: string): Promise<{ delivered: boolean; attempts: number; error?: string }> {
  const d = deps!;
  let lastError = '';
  let attempts = 0;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    attempts = attempt;
    const result = await durableStep(async () => {
      const a = (await d.approvals.get(approvalId))!;
      const project = a.repositoryIdentifier ? await d.projects.find(a.repositoryIdentifier) : null;
      const secret = project?.settings.webhookSecret ?? d.webhookSecret;
      if (!secret) return { ok: false, final: true, error: 'no webhook secret is configured (project or FLOWGATE_WEBHOOK_SECRET)' };
      try {
        const outcome = await d.notifier.notify(a.callback, { event: 'approval.decided', runId: null, repositoryIdentifier: a.repositoryIdentifier, approval: presentApproval(a, project?.owners ?? null) }, secret);
        return outcome.delivered ? { ok: true, final: true } : { ok: false, final: true, error: outcome.reason ?? 'not delivered' };
      } catch (err) {
        return { ok: false, final: err instanceof OutboundRefused, error: messageOf(err) };
      }
    }, { name: `deliver#${attempt}` });
    if (result.ok) return { delivered: true, attempts: attempt };
    lastError = result.error ?? '';
    if (result.final) break;
    await DBOS.sleep(Math.min(1000 * 2 ** (attempt - 1), MAX_BACKOFF_MS));
  }
  DBOS.logger.warn(`approval ${approvalId}: decision not delivered: ${lastError}`);
  return { delivered: false, attempts, error: lastError };
}

export const deliverApproval = DBOS.registerWorkflow(deliverApprovalImpl, { name: 'flowgate.deliver-approval' });
