import type { Project } from '../../db/entities/project.js';
import type { Callback } from '../../db/entities/run.js';

/** The door that owns each kind of chat thread: only it makes callbacks to threads of any project. */
const OWNING_DOOR: Partial<Record<Callback['type'], string>> = { slack: 'slack', github: 'github', 'azure-devops': 'azure-devops' };

const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);

/**
 * Why a caller may not point a run's results at this thread, or undefined. A chat thread can be
 * named by the door it belongs to (it saw the thread), or by anyone else only when the thread is
 * the run's own project's: its repository, its Azure DevOps project, its Slack channel. Otherwise
 * a caller could post into another project's threads, overwrite its cards, or put its own
 * approval where that project's people answer.
 */
export function foreignCallbackProblem(callback: Callback | null | undefined, project: Pick<Project, 'repositoryIdentifier' | 'slackChannel'>, door: string): string | undefined {
  if (!callback || callback.type === 'none' || callback.type === 'webhook') return undefined;
  if (OWNING_DOOR[callback.type] === door) return undefined;
  const repo = project.repositoryIdentifier;
  if (callback.type === 'github') {
    const named = text(callback.github?.repositoryIdentifier) ?? repo;
    if (named.toLowerCase() !== repo.toLowerCase()) return `callback.github.repositoryIdentifier: ${named} is not this run's repository (${repo})`;
    return undefined;
  }
  if (callback.type === 'azure-devops') {
    const named = text(callback.azureDevOps?.repositoryIdentifier) ?? repo;
    if (named.toLowerCase() !== repo.toLowerCase()) return `callback.azureDevOps.repositoryIdentifier: ${named} is not this run's repository (${repo})`;
    const adoProject = text(callback.azureDevOps?.project);
    if (adoProject !== undefined && adoProject.toLowerCase() !== (repo.split('/')[1] ?? '').toLowerCase())
      return `callback.azureDevOps.project: ${adoProject} is not this run's Azure DevOps project (${repo.split('/')[1]})`;
    return undefined;
  }
  const channel = text(callback.slack?.channel);
  if (!project.slackChannel) return `callback.slack.channel: project ${repo} has no Slack channel, so its runs cannot post to one; start it from Slack instead`;
  if (channel !== project.slackChannel) return `callback.slack.channel: ${channel ?? '(none)'} is not the Slack channel of ${repo} (${project.slackChannel})`;
  return undefined;
}
