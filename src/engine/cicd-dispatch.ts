import { DBOS } from '@dbos-inc/dbos-sdk';
import { durableStep } from './durable-step.js';
import type { CicdEngine, CicdService } from '../core/cicd/cicd-service.js';
import { messageOf } from './step-failure.js';

const DISPATCH_ATTEMPTS = 8;
const ANNOUNCE_ATTEMPTS = 6;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
const backoff = (attempt: number) => Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
/** Database-only steps retry on their own (a blip must not strand a run). */
const DB_STEP = { retriesAllowed: true, maxAttempts: 5, intervalSeconds: 1, backoffRate: 2 } as const;

let cicd: CicdService | undefined;
/** Hands the CI/CD service to the workflows; called once, before the engine launches. */
export function setCicdDeps(d: { cicd: CicdService }): void { cicd = d.cicd; }
function service(): CicdService {
  if (!cicd) throw new Error('cicd service not set before launch');
  return cicd;
}

/**
 * Hands a cicd run to its provider: each attempt is one step that creates a fresh execution token
 * and calls the provider (the token is never part of a checkpoint: the step returns only ids).
 * Retried with backoff (1 s doubling, 8 attempts); a refusal (HTTP 4xx) is final. Success records
 * the pipeline's ids and makes the run `running`; final failure fails the run with the reason.
 * Durable: a restart resumes it. At-least-once: a crash mid-call may dispatch twice (same executionId).
 */
async function dispatchImpl(runId: string): Promise<{ dispatched: boolean; attempts: number; error?: string }> {
  let lastError = '';
  let attempt = 1;
  for (; attempt <= DISPATCH_ATTEMPTS; attempt++) {
    const outcome = await durableStep(() => service().attemptDispatch(runId), { name: `dispatch#${attempt}` });
    if (outcome.state === 'ended') return { dispatched: false, attempts: attempt, error: `execution already ${outcome.status ?? 'deleted'}` };
    if (outcome.state === 'dispatched') {
      const { state: _state, ...ids } = outcome;
      await durableStep(() => service().recordDispatched(runId, ids, attempt), { name: 'record-dispatch', ...DB_STEP });
      return { dispatched: true, attempts: attempt };
    }
    lastError = outcome.error;
    const retry = !outcome.final && attempt < DISPATCH_ATTEMPTS;
    await durableStep(() => service().attemptFailed(runId, attempt, outcome.error, retry ? backoff(attempt) : undefined), { name: `dispatch-failed#${attempt}`, ...DB_STEP });
    if (!retry) break;
    await DBOS.sleep(backoff(attempt));
  }
  const failed = await durableStep(() => service().dispatchFailed(runId, lastError), { name: 'fail', ...DB_STEP });
  if (failed) await startAnnouncement(runId);
  return { dispatched: false, attempts: Math.min(attempt, DISPATCH_ATTEMPTS), error: lastError };
}

/** Tells a finished cicd run's callback destination (`run.finished`), retrying with backoff. */
async function announceImpl(runId: string): Promise<{ delivered: boolean; error?: string }> {
  let lastError = '';
  for (let attempt = 1; attempt <= ANNOUNCE_ATTEMPTS; attempt++) {
    const r = await durableStep(async () => {
      try {
        await service().announce(runId);
        return { ok: true as const };
      } catch (err) {
        return { ok: false as const, error: messageOf(err) };
      }
    }, { name: `announce#${attempt}` });
    if (r.ok) return { delivered: true };
    lastError = r.error;
    if (attempt < ANNOUNCE_ATTEMPTS) await DBOS.sleep(backoff(attempt));
  }
  await durableStep(() => service().announceFailed(runId, lastError), { name: 'announce-failed', ...DB_STEP });
  return { delivered: false, error: lastError };
}

export const cicdDispatchWorkflow = DBOS.registerWorkflow(dispatchImpl, { name: 'flowgate.cicd-dispatch' });
export const cicdAnnounceWorkflow = DBOS.registerWorkflow(announceImpl, { name: 'flowgate.cicd-announce' });

const announcementId = (runId: string) => `cicd-finished-${runId}`;
function startAnnouncement(runId: string): Promise<unknown> {
  return DBOS.startWorkflow(cicdAnnounceWorkflow, { workflowID: announcementId(runId) })(runId);
}

/** The engine side of CicdService: workflow ids are deterministic, so each starts once per run. */
export const cicdEngine: CicdEngine = {
  async startDispatch(run) {
    await DBOS.startWorkflow(cicdDispatchWorkflow, { workflowID: run.engineRunId })(run.id);
  },
  async announceFinished(run) {
    await startAnnouncement(run.id);
  },
};
