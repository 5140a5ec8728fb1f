import { z } from 'zod';
import { CATEGORIES } from '../../core/registry/manifest-schema.js';

export const repositoryIdentifier = z.string().trim().min(1, 'required').max(300)
  .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){1,2}$/, 'must look like owner/repo or org/project/repo');

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const callbackSchema = z.object({
  type: z.enum(['github', 'slack', 'webhook', 'azure-devops', 'none']),
  github: z.record(z.string(), z.unknown()).optional(),
  slack: z.record(z.string(), z.unknown()).optional(),
  webhook: z.object({ url: httpUrl }).catchall(z.unknown()).optional(),
  azureDevOps: z.record(z.string(), z.unknown()).optional(),
}).superRefine((c, ctx) => {
  if (c.type === 'webhook' && !c.webhook) ctx.addIssue({ code: 'custom', path: ['webhook'], message: 'required when type is webhook' });
});

/** Run labels: bounded, since every list request may filter on them. */
export const runTags = z.record(
  z.string().min(1, 'a tag key must not be empty').max(64, 'a tag key is at most 64 characters'),
  z.string().max(256, 'a tag value is at most 256 characters'),
).refine((t) => Object.keys(t).length <= 20, 'at most 20 tags');

export const taskRunBody = z.object({
  payload: z.object({
    id: z.string({ error: 'required: the flow type id' }).min(1, 'required: the flow type id'),
    repositoryIdentifier,
  }).catchall(z.unknown()),
  callback: callbackSchema.optional(),
  tags: runTags.optional(),
});

const boolish = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const workItemTypes = ['github-issue', 'github-pr', 'github-commit', 'ado-workitem', 'ado-commit'] as const;

export const listRunsQuery = z.object({
  repositoryIdentifier,
  limit: z.coerce.number().int('must be an integer').min(1).max(100).default(50),
  page: z.coerce.number().int('must be an integer').min(1).default(1),
  executionMode: z.enum(['flow', 'cicd']).optional(),
  category: z.enum(CATEGORIES).optional(),
  taskType: z.string().min(1).optional(),
  flowPath: z.string().min(1).optional(),
  workItemKey: z.string().min(1).optional(),
  workItemType: z.enum(workItemTypes).optional(),
  since: z.string().min(1).optional(),
  triggeredBy: z.string().min(1).optional(),
  includeScheduled: boolish.default(false),
  date: z.iso.date('must be a calendar day, YYYY-MM-DD').optional(),
});

export const idParams = z.object({ id: z.string().min(1).max(200) });
export const typeParams = z.object({ taskTypeId: z.string().min(1).max(200) });
export const toggleBody = z.object({ repositoryIdentifier });
export const overrideBody = z.object({ repositoryIdentifier, overrideFlowTypeId: z.string().min(1, 'required') });
export const projectQuery = z.object({ repositoryIdentifier });
export const rerunBody = z.object({ payloadOverrides: z.record(z.string(), z.unknown()).default({}) });
