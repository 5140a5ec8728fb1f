import { z } from 'zod';
import { AdoError, type AdoClient } from '../doors/azure-devops/client.js';
import { escapeHtml } from '../doors/azure-devops/html.js';
import { organizationOf, splitIdentifier } from '../doors/azure-devops/work-items.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { apiFailure, doorClient } from './doors.js';
import { inputOf, plugin } from './plugin.js';

const REQUIRES = ['door:azure-devops'];
const workItemId = z.number().int().positive();
const fieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.]*$/, 'a field reference name such as System.Description');

/**
 * The Azure DevOps door's client, in the execution's own project (`org/project/repo` in the door's
 * organisation), never one a flow names: refusals (4xx) fail the step for good.
 */
async function inProject<T>(c: KindCall, act: (ado: AdoClient, project: string) => Promise<T>): Promise<T> {
  const ado = doorClient(c, 'azure-devops');
  const parts = splitIdentifier(c.run.repositoryIdentifier);
  if (!parts) throw new StepFailure(`the execution's project ${c.run.repositoryIdentifier} is not an Azure DevOps org/project/repo`, false);
  const org = organizationOf(ado.orgUrl);
  if (parts.org.toLowerCase() !== org.toLowerCase()) throw new StepFailure(`the execution's project ${c.run.repositoryIdentifier} is not in organisation ${org} (AZURE_DEVOPS_ORG_URL)`, false);
  try {
    return await act(ado, parts.project);
  } catch (err) {
    throw apiFailure(err, err instanceof AdoError ? err.status : undefined);
  }
}

/** The work item, which must be in the project (the API would act on another project's item by id). */
async function ownWorkItem(ado: AdoClient, project: string, id: number) {
  const item = await ado.workItem(id, project);
  if (!item || item.project.toLowerCase() !== project.toLowerCase()) throw new StepFailure(`work item ${id} not found in project ${project}`, false);
  return item;
}

const commentInput = z.strictObject({ workItemId, text: z.string().min(1).max(100_000) });
export const azureDevOpsComment = plugin({
  id: 'azure_devops.comment', name: 'Azure DevOps comment', category: 'saas',
  description: 'Comments on a work item of the execution\'s project; `text` is plain text (shown as written, line breaks kept). Output: `{id}`.',
  input: commentInput, output: z.object({ id: z.number() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, commentInput);
    const comment = await inProject(c, async (ado, project) => {
      await ownWorkItem(ado, project, i.workItemId);
      // Comments are HTML: what the flow wrote is shown, never interpreted.
      return ado.addComment(project, i.workItemId, escapeHtml(i.text).replace(/\r?\n/g, '<br>'));
    });
    c.note('info', `Commented on work item ${i.workItemId} (comment ${comment.id})`);
    return { id: comment.id };
  },
});

const workItemInput = z.strictObject({
  workItemId: workItemId.optional(), type: z.string().min(1).max(128).optional(), title: z.string().min(1).max(255).optional(),
  fields: z.record(fieldName, z.unknown()).default({}), state: z.string().min(1).max(128).optional(),
}).refine((i) => i.workItemId !== undefined || (i.type !== undefined && i.title !== undefined), 'creating a work item (no workItemId) needs type and title')
  .refine((i) => i.workItemId === undefined || i.type === undefined, 'the type of an existing work item cannot be changed')
  .refine((i) => i.workItemId === undefined || i.title !== undefined || i.state !== undefined || Object.keys(i.fields).length > 0, 'updating a work item needs title, state or fields');
export const azureDevOpsWorkItem = plugin({
  id: 'azure_devops.work_item', name: 'Azure DevOps work item', category: 'saas',
  description: 'Creates a work item of `type` with `title` in the execution\'s project, or (with `workItemId`) updates one of its work items; `state` and `fields` (by reference name, e.g. `System.Description`, `System.Tags`) are set either way. Output: `{id, rev, url}`.',
  input: workItemInput, output: z.object({ id: z.number(), rev: z.number(), url: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, workItemInput);
    const fields = { ...i.fields, ...(i.title !== undefined ? { 'System.Title': i.title } : {}), ...(i.state !== undefined ? { 'System.State': i.state } : {}) };
    const { item, project, orgUrl } = await inProject(c, async (ado, project) => {
      if (i.workItemId !== undefined) await ownWorkItem(ado, project, i.workItemId);
      const saved = await ado.saveWorkItem(project, { id: i.workItemId, type: i.type, fields });
      if (!saved) throw new StepFailure(i.workItemId === undefined ? `work item type ${i.type} not found in project ${project}` : `work item ${i.workItemId} not found in project ${project}`, false);
      return { item: saved, project, orgUrl: ado.orgUrl };
    });
    c.note('info', `${i.workItemId === undefined ? 'Created' : 'Updated'} work item ${item.id} (revision ${item.rev})`);
    return { id: item.id, rev: item.rev, url: item.url ?? `${orgUrl.replace(/\/+$/, '')}/${encodeURIComponent(project)}/_workitems/edit/${item.id}` };
  },
});

const pipelineInput = z.strictObject({
  pipeline: z.union([z.number().int().positive(), z.string().regex(/^\d+$/, 'the numeric pipeline id').transform(Number)]),
  ref: z.string().min(1).max(255).optional(), parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
export const azureDevOpsPipeline = plugin({
  id: 'azure_devops.pipeline', name: 'Azure Pipelines run', category: 'saas',
  description: 'Queues a run of a pipeline (its numeric id) of the execution\'s project on `ref` (a branch or `refs/…`; default: the pipeline\'s) with template `parameters` the pipeline declares, without waiting for it (`cicd.run` waits). Output: `{runId, url}`.',
  input: pipelineInput, output: z.object({ runId: z.number(), url: z.string().nullable() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, pipelineInput);
    const templateParameters = Object.fromEntries(Object.entries(i.parameters).map(([k, v]) => [k, String(v)]));
    const ref = i.ref && (i.ref.startsWith('refs/') ? i.ref : `refs/heads/${i.ref}`);
    const run = await inProject(c, async (ado, project) => {
      const queued = await ado.queuePipeline(project, i.pipeline, { templateParameters, ...(ref ? { resources: { repositories: { self: { refName: ref } } } } : {}) });
      if (!queued) throw new StepFailure(`pipeline ${i.pipeline} not found in project ${project}`, false);
      return queued;
    });
    c.note('info', `Queued run ${run.id} of pipeline ${i.pipeline}${ref ? ` on ${ref}` : ''}`);
    return { runId: run.id, url: run.url ?? null };
  },
});

export const AZURE_DEVOPS_PLUGINS = [azureDevOpsComment, azureDevOpsWorkItem, azureDevOpsPipeline];
