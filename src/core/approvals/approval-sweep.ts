import type { SweepTask } from '../maintenance/sweeper.js';
import type { ApprovalEffects, ApprovalService } from './approval-service.js';

/**
 * Expires external approvals past their time, and re-sends the wake-up of decided approvals
 * whose step still waits (a process that died between committing a decision and waking it).
 */
export function approvalSweep(approvals: ApprovalService, effects: ApprovalEffects): SweepTask {
  return {
    name: 'approvals',
    async run() {
      for (const a of await approvals.overdueExternal()) {
        const expired = await approvals.expire(a.id);
        if (expired.status === 'expired') await effects.decided(expired);
      }
      for (const a of await approvals.decidedAwaitingWake()) await effects.decided(a);
    },
  };
}
