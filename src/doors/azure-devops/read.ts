import type { Person } from '../../core/approvals/approval-rules.js';
import type { ThreadRef } from '../../core/approvals/thread-lookup.js';
import { Project, type WorkItemFlows } from '../../db/entities/project.js';
import { escapeLike } from '../../db/sql.js';
import { describeRun } from '../actions.js';
import type { WorkItemData } from './client.js';
import { d } from './context.js';
import type { AdoIdentity } from './work-items.js';

// Reading: everything acted on comes from the API (and the database), inside recorded steps (`inbound.ts`).

export interface Candidate { repositoryIdentifier: string; workItemFlows?: WorkItemFlows }

export interface PersonOrWhy { person?: Person; why?: string; uniqueName: string }

/** The person behind an Azure DevOps identity: the directory's link, else the unique name when it is an email. */
export async function personOf(identity: AdoIdentity | undefined): Promise<PersonOrWhy> {
  if (!identity) return { uniqueName: '(unknown)', why: 'Azure DevOps did not say who made this change' };
  const linked = await d().s.identities.emailByAdo(identity.uniqueName);
  const email = linked ?? (/^[^@\s]+@[^@\s]+$/.test(identity.uniqueName) ? identity.uniqueName.toLowerCase() : undefined);
  if (!email)
    return { uniqueName: identity.uniqueName, why: `Azure DevOps user ${identity.uniqueName} is not linked to an email. A Flowgate owner can link it: PUT /api/v1/identities/{email} with {"adoUniqueName": "${identity.uniqueName}"}.` };
  return { uniqueName: identity.uniqueName, person: { email, name: identity.displayName || identity.uniqueName, as: `Azure DevOps ${identity.uniqueName}${linked ? ', linked in Flowgate' : ''}` } };
}

/** Flowgate projects of an Azure DevOps project: the `org/project/*` ones. */
export async function candidatesOf(adoProject: string): Promise<Candidate[]> {
  const { s, org } = d();
  const rows = await s.orm.em.fork().find(Project, { repositoryIdentifier: { $ilike: `${escapeLike(`${org}/${adoProject}/`)}%` } }, { orderBy: { repositoryIdentifier: 'asc' } });
  return rows.map((p) => ({ repositoryIdentifier: p.repositoryIdentifier, workItemFlows: p.settings.workItemFlows }));
}

/** The work item's Flowgate project named by `hint` (`repo` or `org/project/repo`), or the only one. */
export function chooseProject(candidates: Candidate[], adoProject: string, hint: string | undefined): Candidate | string {
  const { org } = d();
  if (hint) {
    const full = (hint.includes('/') ? hint : `${org}/${adoProject}/${hint}`).toLowerCase();
    return candidates.find((c) => c.repositoryIdentifier.toLowerCase() === full)
      ?? `${hint} is not a Flowgate project of Azure DevOps project ${adoProject} (known: ${candidates.map((c) => c.repositoryIdentifier).join(', ') || 'none'})`;
  }
  if (candidates.length === 1) return candidates[0];
  if (!candidates.length) return `No Flowgate project is registered for Azure DevOps project ${org}/${adoProject} (register one as ${org}/${adoProject}/<repo>)`;
  return `Azure DevOps project ${adoProject} has several Flowgate projects (${candidates.map((c) => c.repositoryIdentifier).join(', ')}): say which with repo=<repo>, or set the work item field Custom.FlowgateRepository`;
}

export const repositoryHint = (wi: WorkItemData): string | undefined => {
  const v = Object.entries(wi.fields).find(([k]) => /^custom\.flowgaterepository$/i.test(k))?.[1];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
};

/** The work item as the core looks threads up: approvals and runs of its Flowgate projects only. */
export const threadOf = (candidates: Candidate[], workItemId: number): ThreadRef =>
  ({ kind: 'azureDevOps', workItemId, repositoryIdentifiers: candidates.map((c) => c.repositoryIdentifier) });

/** The runs started from this work item and those of its approvals, newest first. */
export async function runsOf(candidates: Candidate[], workItemId: number): Promise<{ id: string; status: string; line: string }[]> {
  const runs = await d().s.approvals.runsOfThread(threadOf(candidates, workItemId));
  return runs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).map((r) => ({ id: r.id, status: r.status, line: describeRun(r) }));
}
