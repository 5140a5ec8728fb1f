import type { Project } from '../../db/entities/project.js';

/**
 * Who may approve, as a flow or an external engine names it: `owners` (the project's owners,
 * checked live when they decide), `group:<name>` (a group defined on the project), explicit
 * emails, or a list mixing them. Null or empty means `owners`.
 */
export type ApproverSpec = string[] | null;

export const GROUP_PREFIX = 'group:';
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface ApprovalPolicy {
  /** Explicit emails, or null for the project's owners (read again at each decision). */
  approvers: string[] | null;
}

/** The part of a project the policy reads. */
export type PolicyProject = Pick<Project, 'repositoryIdentifier' | 'owners' | 'members' | 'settings'>;

/**
 * Resolves a flow's approver spec against the run's project and checks the approval can be
 * decided at all: every explicit approver belongs to the project (owner or member; groups are
 * the project owners' own choice), the resolved set is not empty, and the quorum can be met by
 * people other than the requester when self-approval is off. Returns the reason when not.
 */
export function resolveApprovalPolicy(
  spec: ApproverSpec, project: PolicyProject | null, rule: { quorum: number; allowSelfApproval: boolean; requestedBy: string },
): ApprovalPolicy | { problem: string; field: 'approvers' | 'quorum' } {
  const entries = (spec ?? []).map((e) => e.trim()).filter(Boolean);
  const where = project?.repositoryIdentifier ?? 'no project';
  const onlyOwners = entries.length === 0 || entries.every((e) => e === 'owners');
  if (!project && (onlyOwners || entries.some((e) => e === 'owners' || e.startsWith(GROUP_PREFIX))))
    return { field: 'approvers', problem: 'explicit approver emails are required when the approval belongs to no project' };

  const people = new Set<string>();
  if (onlyOwners) {
    for (const o of project!.owners) people.add(o.toLowerCase());
    if (!people.size) return { field: 'approvers', problem: `project ${where} has no owners, so nobody could approve; add owners or name a group` };
  } else {
    const belongs = new Set([...(project?.owners ?? []), ...(project?.members ?? [])].map((e) => e.toLowerCase()));
    const outsiders: string[] = [];
    for (const entry of entries) {
      if (entry === 'owners') {
        project!.owners.forEach((o) => people.add(o.toLowerCase()));
      } else if (entry.startsWith(GROUP_PREFIX)) {
        const name = entry.slice(GROUP_PREFIX.length);
        const groups = project!.settings.approverGroups ?? {};
        const group = groups[name];
        if (!group) return { field: 'approvers', problem: `approver group "${name}" is not defined on project ${where} (defined: ${Object.keys(groups).join(', ') || 'none'})` };
        if (!group.length) return { field: 'approvers', problem: `approver group "${name}" of project ${where} is empty` };
        group.forEach((e) => people.add(e.toLowerCase()));
      } else {
        const email = entry.toLowerCase();
        if (project && !belongs.has(email)) outsiders.push(email);
        people.add(email);
      }
    }
    if (outsiders.length)
      return { field: 'approvers', problem: `${outsiders.join(', ')} ${outsiders.length > 1 ? 'are' : 'is'} not an owner or member of ${where}, so cannot be named as approver` };
  }
  const requester = rule.requestedBy.toLowerCase();
  const eligible = [...people].filter((p) => rule.allowSelfApproval || p !== requester);
  if (rule.quorum > eligible.length) {
    const others = rule.allowSelfApproval ? '' : ' other than the requester';
    return { field: 'quorum', problem: `quorum ${rule.quorum} can never be reached: ${eligible.length} possible approver(s)${others} (${eligible.join(', ') || 'none'})` };
  }
  return { approvers: onlyOwners ? null : [...people] };
}
