import type { Services } from '../../container.js';
import { callerLabel } from '../../core/identity/principal.js';
import { TERMINAL_STEP_STATUSES } from '../../core/status.js';
import { AppError, badRequest, notFound, unauthenticated } from '../../errors.js';
import { route } from '../route.js';
import { presentStepApproval, presentStepRun } from './present.js';
import { requireEngine, visibleRun } from './visible-run.js';
import { stepParams } from './schemas.js';

const DECIDERS = ['owner', 'member'] as const;

/** Approving an approval step: the caller's email decides, through the same `ApprovalService.decide` as every door. */
export function approveRoutes(s: Services) {
  return [
    route({
      method: 'post', path: '/{workflowRunID}/steps/{stepRef}/approve', roles: DECIDERS, params: stepParams,
      summary: 'Approve an approval step',
      description: 'The approver is the person of the calling token (its email). Answers the step run and its approval; the step completes as the run continues (with a quorum above 1, after enough approvals).',
      responses: {
        200: 'Approved (or counted toward the quorum): `{step_run, approval}`',
        400: 'The step has ended, has no approval, its approval is already decided or expired, or the caller may not approve it',
        401: 'Missing token, or a token without a person (email)',
        404: 'Workflow run or step not found',
        503: 'Flow engine unavailable',
      },
      async handler({ principal, params }) {
        if (!principal.email) throw unauthenticated(`${callerLabel(principal)} is not bound to a person (no email); approvals are decided by a person`);
        const run = await visibleRun(s, params.workflowRunID, principal);
        const ref = params.stepRef;
        const step = (await s.store.steps(run.id)).find((x) => x.stepRef === ref);
        if (!step) {
          const known = (await s.store.findById(run.id, true))?.definition?.steps?.some((d) => d.ref === ref);
          if (!known) throw notFound(`Step ${ref} not found in workflow run ${run.id}`);
          throw badRequest(`Step ${ref} has not started: it has no approval to decide yet`);
        }
        if (TERMINAL_STEP_STATUSES.includes(step.status)) throw badRequest(`Step ${ref} has already ended (${step.status})`);
        const approval = (await s.approvals.forRuns([run.id])).find((a) => a.stepRef === ref);
        if (!approval) throw badRequest(`Step ${ref} has no approval`);
        // Checked before deciding: a decision the engine cannot deliver must not be recorded.
        requireEngine(s);
        let decided;
        try {
          decided = await s.approvals.decide(approval.id, { email: principal.email, name: principal.name, as: callerLabel(principal) }, 'approve', null, 'rest');
        } catch (err) {
          // `decide` has audited the refusal (not an approver, the requester, decided, expired); this API answers 400.
          if (err instanceof AppError && (err.code === 'forbidden' || err.code === 'conflict')) throw badRequest(err.message);
          throw err;
        }
        const now = (await s.store.steps(run.id)).find((x) => x.stepRef === ref) ?? step;
        return { body: { step_run: presentStepRun(now, run), approval: presentStepApproval(decided, await s.approvals.deciders(decided)) } };
      },
    }),
  ];
}
