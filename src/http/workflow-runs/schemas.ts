import { z } from 'zod';
import { isUuid } from '../../core/ids.js';
import type { RunPosition } from '../../core/runs/run-page-query.js';
import { RUN_STATE_NAMES } from './present.js';

/** The opaque list cursor: base64url of `<created_at with microseconds>|<run id>`. */
export const encodeCursor = (p: RunPosition) => Buffer.from(`${p.createdAt}|${p.id}`).toString('base64url');

const cursor = z.string().max(200).transform((value, ctx): RunPosition => {
  const [createdAt, id, ...rest] = Buffer.from(value, 'base64url').toString('utf8').split('|');
  if (rest.length || !id || !isUuid(id) || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(createdAt ?? '') || Number.isNaN(Date.parse(createdAt))) {
    ctx.addIssue({ code: 'custom', message: 'not a cursor this API returned (take it from the X-Next-Cursor header)' });
    return z.NEVER;
  }
  return { createdAt, id };
});

export const listQuery = z.object({
  project_id: z.string({ error: 'required: the project (owner/repo)' }).trim().min(1, 'required: the project (owner/repo)').max(300),
  status: z.enum(RUN_STATE_NAMES).optional(),
  tag_key: z.string().min(1).max(64).optional(),
  tag_value: z.string().max(256).optional(),
  limit: z.coerce.number().int('must be an integer').min(1).max(100).default(50),
  cursor: cursor.optional(),
});

export const runParams = z.object({ workflowRunID: z.string().min(1).max(200) });
export const stepParams = z.object({ workflowRunID: z.string().min(1).max(200), stepRef: z.string().min(1).max(200) });

/** `{workflow_run_ids: [1..100]}`, the body of bulk-cancel and bulk-replay. */
export const bulkBody = z.object({
  workflow_run_ids: z.array(z.string().min(1).max(200), { error: 'required: a list of workflow run ids' })
    .min(1, 'name at least one workflow run').max(100, 'at most 100 workflow runs per request'),
});

/** An absent or empty body is `{}`. */
export const skipBody = z.object({ reason: z.string().max(2_000, 'at most 2000 characters').optional() });
export const forceCompleteBody = z.object({ result: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional() });

const when = z.string().nullable();

/** Documentation of the answers (/openapi.json). */
export const runSchema = z.object({
  id: z.string(), workflow_id: z.string(), project_id: z.string(), status: z.enum(RUN_STATE_NAMES), triggered_by: z.string(),
  workflow_version: z.number().int().nullable(), max_parallel_steps: z.number().int(), payload: z.record(z.string(), z.unknown()),
  error: z.string().nullable(), started_at: when, finished_at: when, expires_at: when, retry_of_run_id: z.string().nullable(),
  parent_workflow_run_id: z.string().nullable(), parent_step_run_id: z.string().nullable(), tags: z.record(z.string(), z.string()),
  workflow_version_id: z.string().nullable(), created_by: z.string(), created_at: z.string(),
});

export const stepRunSchema = z.object({
  id: z.string(), workflow_run_id: z.string(), workflow_step_id: z.string().nullable(), step_ref: z.string(), job_run_id: z.string().nullable(),
  attempt: z.number().int(), status: z.enum(['pending', 'waiting', 'running', 'completed', 'failed', 'skipped', 'canceled']),
  deps_completed: z.number().int(), deps_required: z.number().int(), output: z.unknown(), error: z.string().nullable(),
  started_at: when, finished_at: when, created_at: z.string(),
});
