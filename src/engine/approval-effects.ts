import { DBOS } from '@dbos-inc/dbos-sdk';
import type { ApprovalEffects } from '../core/approvals/approval-service.js';
import { stepWorkflowId, type EnginePort } from '../core/runs/engine-port.js';
import type { RunStore } from '../core/runs/run-store.js';
import { deliverApproval } from './approval-delivery.js';
import { approvalUpdate, sendApprovalUpdate } from './approval-update.js';
import { approvalTopic } from './steps/approval.js';

/**
 * After a decision: wake the waiting approval step (one message per approval, deduplicated by
 * its idempotency key), or start the durable delivery to an external engine's webhook. After
 * any change of a run's approval: tell its thread (a v2 run's through the outbox).
 */
export function approvalEffects(engine: EnginePort, store: RunStore, wakeV2?: (runId: string) => Promise<boolean>, here?: Pick<ApprovalEffects, 'notifyMark' | 'told'>): ApprovalEffects {
  return {
    ...here,
    async decided(a) {
      if (a.runId && a.stepRef) {
        // A run on the v2 executor re-reads the approval row when woken: no message to send.
        if (wakeV2 && (await wakeV2(a.runId))) return;
        // Where the step waits; a step row from before that was recorded runs in its own workflow.
        let mailbox = await store.stepWorkflow(a.runId, a.stepRef);
        if (!mailbox) {
          const run = await store.findById(a.runId);
          if (!run) return;
          mailbox = stepWorkflowId(run.engineRunId, a.stepRef);
        }
        await engine.send(mailbox, approvalTopic(a.stepRef), { approvalId: a.id }, `approval-decided:${a.id}`);
        return;
      }
      if (a.callback?.type === 'webhook') await DBOS.startWorkflow(deliverApproval, { workflowID: deliveryWorkflowId(a.id) })(a.id);
    },
    async changed(a) {
      if (!a.callback || a.callback.type === 'none' || !a.runId) return;
      // A v2 run's thread hears it through the outbox, after what it heard before.
      if (await store.queueNotice(a.runId, 'approval.updated', a.id)) return;
      // Inside an engine step (expiry, a run ending) no workflow may start: send it there and
      // then; the step around it is what makes the change itself durable.
      if (DBOS.isInStep()) {
        await sendApprovalUpdate(a.id).catch((err) => DBOS.logger.warn(`approval ${a.id}: update not delivered: ${(err as Error).message}`));
        return;
      }
      // One update per state: a replayed change starts nothing new.
      await DBOS.startWorkflow(approvalUpdate, { workflowID: `approval-update:${a.id}:${a.status}:${a.decisions.length}` })(a.id);
    },
  };
}

/** The durable delivery of an external approval's decision: one workflow per approval. */
export const deliveryWorkflowId = (approvalId: string) => `deliver-approval-${approvalId}`;
