import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from '../durable-step.js';
import { presentApproval } from '../../core/approvals/present-approval.js';
import { noticeRun } from '../../core/notify/notice-run.js';
import type { Approval } from '../../db/entities/approval.js';
import { AppError } from '../../errors.js';
import { StepFailure } from '../step-failure.js';
import type { StepKind } from './step-kind.js';
import { resolveInput, stepLog } from './step-kind.js';

/** Topic on which a decision wakes an approval step (per step: a run's workflow may host several in turn). */
export const approvalTopic = (stepRef: string) => `flowgate.approval:${stepRef}`;
export const approvalWaitKey = (approvalId: string) => `approval:${approvalId}`;

type Snapshot = Pick<Approval, 'id' | 'status' | 'resolvedBy' | 'reason' | 'decisions'> & { expiresAt: string };
const snapshot = (a: Approval): Snapshot => ({ id: a.id, status: a.status, resolvedBy: a.resolvedBy ?? null, reason: a.reason ?? null, decisions: a.decisions, expiresAt: a.expiresAt.toISOString() });

/**
 * Parks the run (`suspended`) until its approval is decided or expires. The decision arrives
 * as a message, but the approval row is the truth: the step re-reads it on every wake-up, and
 * the durable timer expires it even if no process was running at that moment.
 */
export const approvalStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'approval');
  const now = new Date(await DBOS.now());
  const approvers = typeof input.approvers === 'string' ? [input.approvers] : input.approvers;
  const opened = await durableStep(async () => {
    let a: Approval;
    try {
      a = await x.deps.approvals.openForStep({
        runId: x.run.id, stepRef: x.step.ref, repositoryIdentifier: x.run.repositoryIdentifier, requestedBy: x.run.requestedBy, callback: x.run.callback,
      }, {
        approvers, quorum: input.quorum, allowSelfApproval: input.allowSelfApproval, timeoutHours: input.timeoutHours,
        message: input.message ?? null, context: { taskType: x.run.taskType, ...input.context },
      }, now);
    } catch (err) {
      // An approval nobody could ever decide fails the run now rather than waiting for its expiry.
      if (err instanceof AppError && err.status === 400) return { refused: err.message };
      throw err;
    }
    if (a.status === 'pending') {
      await x.deps.store.stepWaiting(x.run.id, x.step.ref, approvalWaitKey(a.id), 'suspended', ['running', 'waiting', 'queued']);
    }
    return snapshot(a);
  }, { name: `${x.step.ref}.open#${x.attempt}` });
  if ('refused' in opened) throw new StepFailure(`approval cannot be requested: ${opened.refused}`, false);
  await stepLog(x, 'info', `Approval ${opened.id} requested from ${approvers?.length ? approvers.join(', ') : 'the project owners'} (quorum ${input.quorum}, expires ${opened.expiresAt})`, 'requested');
  await announce(x, opened.id, 'approval.requested');

  if (opened.status === 'pending') x.deps.runParked(x.run.id);

  // Once decided (or expired), the step resumes the run and logs the outcome in the same durable
  // step that read the decision: one checkpoint between the wake-up and the step's end.
  const settled = async (a: Snapshot): Promise<Snapshot> => {
    if (a.status === 'pending') return a;
    await x.deps.store.stepWaiting(x.run.id, x.step.ref, null, 'running', ['suspended']);
    const verdict = a.status === 'approved' || a.status === 'rejected' ? ` by ${a.resolvedBy ?? 'nobody'}` : '';
    await x.deps.logs.append(x.run.id, [{ level: a.status === 'approved' ? 'info' : 'warn', source: `step:${x.step.ref}`, group: x.step.type, message: `Approval ${a.status}${verdict}${a.reason ? `: ${a.reason}` : ''}` }]);
    return a;
  };
  let state = opened.status === 'pending' ? opened : await durableStep(() => settled(opened), { name: `${x.step.ref}.resume#${x.attempt}` });
  while (state.status === 'pending') {
    const left = (Date.parse(state.expiresAt) - (await DBOS.now())) / 1000;
    const woke = left > 0 ? await DBOS.recv<{ approvalId: string }>(approvalTopic(x.step.ref), { timeoutSeconds: left }) : null;
    state = await durableStep(async () => settled(snapshot(woke ? (await x.deps.approvals.get(opened.id))! : await x.deps.approvals.expire(opened.id))), { name: `${x.step.ref}.check#${x.attempt}` });
  }
  const who = state.resolvedBy ?? 'nobody';
  if (state.status === 'approved') {
    return { approvalId: state.id, status: 'approved', approvedBy: state.decisions.filter((d) => d.verdict === 'approve').map((d) => d.email), decisions: state.decisions };
  }
  if (state.status === 'rejected') throw new StepFailure(`approval rejected by ${who}${state.reason ? `: ${state.reason}` : ''}`, false);
  throw new StepFailure(`approval ${state.status}`, false);
};

/**
 * Asks the approvers in the run's thread; a chat destination answers with where it posted, which
 * later updates (votes, the decision) edit. A failed delivery is logged, it does not fail the run.
 */
async function announce(x: Parameters<StepKind>[0], approvalId: string, event: 'approval.requested') {
  await durableStep(async () => {
    const a = (await x.deps.approvals.get(approvalId))!;
    if (a.chat.slack?.messageTs || a.chat.github?.commentId || a.chat.azureDevOps?.commentId) return;
    try {
      const run = (await x.deps.store.findById(x.run.id))!;
      const outcome = await x.deps.notifier.notify(x.run.callback, { event, runId: x.run.id, taskType: x.run.taskType, repositoryIdentifier: x.run.repositoryIdentifier, approval: presentApproval(a, null), run: noticeRun(run) });
      if (outcome.posted) await x.deps.approvals.recordPosted(a.id, outcome.posted);
      if (!outcome.delivered && outcome.reason) await x.deps.logs.append(x.run.id, [{ level: 'info', source: `step:${x.step.ref}`, group: 'notify', message: `Approval request not posted: ${outcome.reason}` }]);
    } catch (err) {
      await x.deps.logs.append(x.run.id, [{ level: 'warn', source: `step:${x.step.ref}`, group: 'notify', message: `${event} not delivered: ${(err as Error).message}` }]);
    }
  }, { name: `${x.step.ref}.${event}#${x.attempt}` });
}
