import type { AzureDevOpsSettings } from '../../config.js';
import type { Destination } from '../../core/notify/destination.js';
import type { Notice, NoticeOutcome } from '../../core/notify/notice.js';
import type { ApprovalService } from '../../core/approvals/approval-service.js';
import type { Callback } from '../../db/entities/run.js';
import type { AdoClient } from './client.js';
import { renderApprovalRequest, renderApprovalUpdate, renderRunFinished, renderRunMessage, type ApprovalView } from './render.js';
import { organizationOf, splitIdentifier } from './work-items.js';

/** Where an `azure-devops` callback points: `{azureDevOps: {repositoryIdentifier, workItemId, project?}}`. */
export interface WorkItemTarget {
  repositoryIdentifier: string;
  workItemId: number;
  /** The Azure DevOps project: `project` of the callback, else the middle part of `org/project/repo`. */
  project: string;
}

export function targetOf(callback: Callback, fallbackRepository: string | null | undefined): WorkItemTarget | string {
  const z = callback.azureDevOps ?? {};
  const repositoryIdentifier = String(z.repositoryIdentifier ?? fallbackRepository ?? '');
  const workItemId = Number(z.workItemId);
  if (!Number.isInteger(workItemId) || workItemId <= 0) return 'the azure-devops callback has no valid workItemId';
  const project = typeof z.project === 'string' && z.project ? z.project : splitIdentifier(repositoryIdentifier)?.project;
  if (!project) return `the azure-devops callback names no Azure DevOps project (repositoryIdentifier "${repositoryIdentifier}" is not org/project/repo)`;
  return { repositoryIdentifier, workItemId, project };
}

/** Who may decide, looked up as `decide` checks it. */
type Deciders = Pick<ApprovalService, 'deciders'>;

/** Approvers for display: explicit ones, or the project's owners looked up now. */
async function approvalView(notice: Notice, approvals: Deciders): Promise<ApprovalView> {
  const a: ApprovalView & { repositoryIdentifier?: string; executionId?: string } = notice.approval!;
  const approvers = await approvals.deciders({ ...a, repositoryIdentifier: a.repositoryIdentifier ?? notice.repositoryIdentifier });
  return { ...a, approvers, runId: a.executionId ?? notice.runId ?? null, taskType: notice.taskType ?? (a as { context?: { taskType?: string } }).context?.taskType ?? null };
}

/**
 * Runs whose callback is a work item talk back as comments on it: the approval request (its
 * comment id is recorded, so the approval is found by work item), votes and decisions, notify
 * messages and the run's result.
 */
export function azureDevOpsDestination(client: AdoClient, settings: AzureDevOpsSettings, approvals: Deciders): Destination {
  const org = organizationOf(settings.orgUrl);
  return {
    type: 'azure-devops',
    async notify(callback: Callback, notice: Notice): Promise<NoticeOutcome> {
      const target = targetOf(callback, notice.repositoryIdentifier ?? notice.approval?.repositoryIdentifier);
      if (typeof target === 'string') return { delivered: false, reason: target };
      const ownOrg = splitIdentifier(target.repositoryIdentifier)?.org;
      if (ownOrg && ownOrg.toLowerCase() !== org.toLowerCase())
        return { delivered: false, reason: `work item of organisation ${ownOrg}, but this server's Azure DevOps door is for ${org}` };
      let html: string;
      switch (notice.event) {
        case 'approval.requested':
          html = renderApprovalRequest(await approvalView(notice, approvals), settings);
          break;
        case 'approval.updated':
          html = renderApprovalUpdate(await approvalView(notice, approvals));
          break;
        case 'run.finished': {
          const r = notice.run;
          html = renderRunFinished({
            id: r?.id ?? notice.runId ?? '', taskType: r?.taskType ?? notice.taskType ?? 'flow', status: notice.status ?? r?.status ?? 'finished',
            error: notice.error ?? r?.error ?? null, result: notice.result ?? r?.result ?? null, startedAt: r?.startedAt ?? null, finishedAt: r?.finishedAt ?? null,
          });
          break;
        }
        case 'run.message':
          html = renderRunMessage(notice.taskType, notice.runId, notice.message ?? '');
          break;
        default:
          return { delivered: false, reason: `${notice.event} is not shown on work items` };
      }
      const comment = await client.addComment(target.project, target.workItemId, html);
      if (notice.event === 'approval.requested')
        return { delivered: true, posted: { azureDevOps: { repositoryIdentifier: target.repositoryIdentifier, workItemId: target.workItemId, commentId: comment.id } } };
      return { delivered: true };
    },
  };
}
