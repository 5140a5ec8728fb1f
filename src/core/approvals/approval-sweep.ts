import type { SweepTask } from '../maintenance/sweeper.js';
import type { ApprovalEffects, ApprovalService } from './approval-service.js';

/**
 * Expires external approvals past their time, re-sends the wake-up of decided approvals whose
 * step still waits, and starts the delivery of external decisions whose delivery never started
 * (a process that died between committing a decision and acting on it).
 */
export function approvalSweep(approvals: ApprovalService, effects: ApprovalEffects, deliveryStarted?: (approvalId: string) => Promise<boolean>): SweepTask {
  return {
    name: 'approvals',
    async run() {
      for (const a of await approvals.overdueExternal()) {
        const expired = await approvals.expire(a.id);
        if (expired.status === 'expired') await effects.decided(expired);
      }
      for (const a of await approvals.decidedAwaitingWake()) await effects.decided(a);
      if (deliveryStarted) {
        for (const a of await approvals.decidedExternalRecently()) if (!(await deliveryStarted(a.id))) await effects.decided(a);
      }
    },
  };
}
