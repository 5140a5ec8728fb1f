import type { Config } from '../config.js';
import type { Approval } from '../db/entities/approval.js';

export interface PlaceLink { door: string; label: string; href: string | null }

/** GitHub's web address from its API address: api.github.com → github.com; GitHub Enterprise's /api/v3 → the host. */
export function githubWebUrl(apiUrl: string): string {
  const u = new URL(apiUrl);
  if (u.hostname === 'api.github.com') return 'https://github.com';
  return `${u.protocol}//${u.host}`;
}

/** Where an approval was asked: links back to the Slack thread, GitHub issue or pull request, Azure DevOps work item. */
export function whereAsked(config: Config, a: Approval): PlaceLink[] {
  const places: PlaceLink[] = [];
  const { slack, github, azureDevOps } = a.chat ?? {};
  if (slack) places.push({ door: 'slack', label: `Slack thread in ${slack.channel}`, href: `https://slack.com/app_redirect?channel=${encodeURIComponent(slack.channel)}` });
  if (github) {
    const base = config.github ? githubWebUrl(config.github.apiUrl) : 'https://github.com';
    places.push({ door: 'github', label: `${github.repositoryIdentifier}#${github.issueNumber}`, href: `${base}/${github.repositoryIdentifier}/issues/${github.issueNumber}` });
  }
  if (azureDevOps) {
    const org = config.azureDevOps?.orgUrl?.replace(/\/$/, '');
    places.push({ door: 'azure-devops', label: `Work item ${azureDevOps.workItemId}`, href: org ? `${org}/_workitems/edit/${azureDevOps.workItemId}` : null });
  }
  return places;
}
