import type { ChatRef } from '../../db/entities/approval.js';
import type { PresentedApproval } from '../approvals/present-approval.js';

/** The run a notice is about, as destinations render it. */
export interface NoticeRun {
  id: string;
  taskType: string;
  status: string;
  triggeredBy: string;
  repositoryIdentifier: string;
  payload: Record<string, unknown>;
  startedAt?: string | null;
  finishedAt?: string | null;
  error?: string | null;
  result?: Record<string, unknown>;
  /** The run that started this one, if any (a child run shares its parent's thread). */
  parentRunId?: string | null;
}

/** What Flowgate tells a run's destination. */
export interface Notice {
  /**
   * run.message: a notify step; run.finished: the outcome; approval.requested: ask the approvers
   * (a chat destination answers with where it posted); approval.updated: a vote, decision, expiry
   * or cancellation (chat destinations edit their message); approval.decided: an external
   * engine's approval was decided.
   */
  event: 'run.message' | 'run.finished' | 'approval.requested' | 'approval.updated' | 'approval.decided';
  runId?: string | null;
  taskType?: string;
  repositoryIdentifier?: string | null;
  approval?: PresentedApproval;
  run?: NoticeRun;
  status?: string;
  message?: string;
  result?: Record<string, unknown>;
  error?: string | null;
}

export interface NoticeOutcome {
  delivered: boolean;
  /** Why nothing was delivered, when it was not. */
  reason?: string;
  /** Where an approval request was posted, so later updates edit that message. */
  posted?: ChatRef;
}
