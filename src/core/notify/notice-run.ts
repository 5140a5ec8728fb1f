import type { Run } from '../../db/entities/run.js';
import type { NoticeRun } from './notice.js';

/** The part of a run a destination shows (never the callback, which may hold secrets). */
export const noticeRun = (r: Run): NoticeRun => ({
  id: r.id, taskType: r.taskType, status: r.status, triggeredBy: r.triggeredBy, repositoryIdentifier: r.repositoryIdentifier,
  payload: r.payload, startedAt: r.startedAt?.toISOString() ?? null, finishedAt: r.finishedAt?.toISOString() ?? null,
  error: r.error ?? null, result: r.result, parentRunId: r.parentRunId ?? null,
});
