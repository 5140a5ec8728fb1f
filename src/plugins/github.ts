import { z } from 'zod';
import { githubStatus, splitRepository, type GithubClient } from '../doors/github/client.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { apiFailure, doorClient } from './doors.js';
import { inputOf, plugin } from './plugin.js';

const REQUIRES = ['door:github'];
const issue = z.number().int().positive();
const label = z.string().min(1).max(50);

/**
 * The GitHub door's client, on the execution's own project repository (never one a flow names):
 * GitHub's refusals (4xx) fail the step for good, other failures are retryable.
 */
async function onProjectRepo<T>(c: KindCall, act: (gh: GithubClient, repository: string) => Promise<T>): Promise<T> {
  const gh = doorClient(c, 'github');
  const repository = c.run.repositoryIdentifier;
  try {
    splitRepository(repository);
  } catch {
    throw new StepFailure(`the execution's project ${repository} is not a GitHub repository (owner/repo)`, false);
  }
  try {
    return await act(gh, repository);
  } catch (err) {
    throw apiFailure(err, githubStatus(err));
  }
}

const commentInput = z.strictObject({ issue, body: z.string().min(1).max(65_536) });
export const githubComment = plugin({
  id: 'github.comment', name: 'GitHub comment', category: 'saas',
  description: 'Comments on an issue or pull request (`issue`: its number) of the execution\'s project repository, as the Flowgate app. Output: `{id, url}`.',
  input: commentInput, output: z.object({ id: z.number(), url: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, commentInput);
    const posted = await onProjectRepo(c, (gh, repositoryIdentifier) => gh.comment({ repositoryIdentifier, issueNumber: i.issue }, i.body));
    c.note('info', `Commented on #${i.issue}: ${posted.url}`);
    return posted;
  },
});

const issueInput = z.strictObject({ title: z.string().min(1).max(256), body: z.string().max(65_536).optional(), labels: z.array(label).max(100).optional() });
export const githubIssue = plugin({
  id: 'github.issue', name: 'GitHub issue', category: 'saas',
  description: 'Opens an issue on the execution\'s project repository, optionally with labels. Output: `{number, url}`.',
  input: issueInput, output: z.object({ number: z.number(), url: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, issueInput);
    const opened = await onProjectRepo(c, (gh, repo) => gh.createIssue(repo, i));
    c.note('info', `Opened issue #${opened.number}: ${opened.url}`);
    return opened;
  },
});

const labelsInput = z.strictObject({ issue, add: z.array(label).max(100).default([]), remove: z.array(label).max(100).default([]) });
export const githubLabels = plugin({
  id: 'github.labels', name: 'GitHub labels', category: 'saas',
  description: 'Removes, then adds labels on an issue or pull request of the execution\'s project repository (removing one it does not have is fine). Output: `{labels}`, the labels it has after.',
  input: labelsInput, output: z.object({ labels: z.array(z.string()) }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, labelsInput);
    const labels = await onProjectRepo(c, (gh, repo) => gh.changeLabels(repo, i.issue, { add: i.add, remove: i.remove }));
    c.note('info', `#${i.issue} has the labels ${labels.length ? labels.join(', ') : '(none)'}`);
    return { labels };
  },
});

const statusInput = z.strictObject({
  sha: z.string().regex(/^[0-9a-f]{40}$/i, 'a full commit SHA (40 hex digits)'), state: z.enum(['error', 'failure', 'pending', 'success']),
  context: z.string().min(1).max(255), targetUrl: z.url({ protocol: /^https?$/ }).optional(), description: z.string().max(140).optional(),
});
export const githubCommitStatus = plugin({
  id: 'github.commit_status', name: 'GitHub commit status', category: 'saas',
  description: 'Sets a commit status (`state` for `context`, with an optional link and description) on a commit of the execution\'s project repository; the app needs the `statuses: write` permission. Output: `{id}`.',
  input: statusInput, output: z.object({ id: z.number() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, statusInput);
    const status = await onProjectRepo(c, (gh, repo) => gh.commitStatus(repo, i));
    c.note('info', `Set ${i.context} to ${i.state} on ${i.sha.slice(0, 12)}`);
    return status;
  },
});

const deploymentInput = z.strictObject({
  ref: z.string().min(1).max(255), environment: z.string().min(1).max(255).default('production'), description: z.string().max(140).optional(),
  payload: z.record(z.string(), z.unknown()).optional(), requiredContexts: z.array(z.string().min(1)).max(50).optional(), productionEnvironment: z.boolean().optional(),
});
export const githubDeployment = plugin({
  id: 'github.deployment', name: 'GitHub deployment', category: 'saas',
  description: 'Records a deployment of `ref` (a branch, tag or SHA) to `environment` (default `production`) in the execution\'s project repository, so it shows on the pull request and the environment; no required status checks unless `requiredContexts` names them, no auto-merge. The app needs `deployments: write`. Output: `{id, url}` — `github.deployment_status` reports on it.',
  input: deploymentInput, output: z.object({ id: z.number(), url: z.string() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, deploymentInput);
    const d = await onProjectRepo(c, (gh, repo) => gh.createDeployment(repo, i));
    c.note('info', `Deployment ${d.id} of ${i.ref} to ${i.environment}`);
    return d;
  },
});

const deploymentStatusInput = z.strictObject({
  deployment: z.number().int().positive(), state: z.enum(['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success']),
  description: z.string().max(140).optional(), environmentUrl: z.url({ protocol: /^https?$/ }).optional(), logUrl: z.url({ protocol: /^https?$/ }).optional(),
});
export const githubDeploymentStatus = plugin({
  id: 'github.deployment_status', name: 'GitHub deployment status', category: 'saas',
  description: 'Reports on a deployment of the execution\'s project repository (`github.deployment`\'s `id`): `state` (`in_progress`, `success`, `failure`, `error`, `inactive`, `queued`, `pending`) with the environment\'s and the log\'s links. Output: `{id}`.',
  input: deploymentStatusInput, output: z.object({ id: z.number() }), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, deploymentStatusInput);
    const s = await onProjectRepo(c, (gh, repo) => gh.deploymentStatus(repo, i));
    c.note('info', `Deployment ${i.deployment} is ${i.state}`);
    return s;
  },
});

const dispatchInput = z.strictObject({
  workflow: z.string().min(1).max(255), ref: z.string().min(1).max(255).optional(),
  inputs: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
export const githubDispatch = plugin({
  id: 'github.dispatch', name: 'GitHub Actions dispatch', category: 'saas',
  description: 'Starts a `workflow_dispatch` workflow (its file name or id) of the execution\'s project repository on `ref` (default: the default branch) with `inputs`, without waiting for it (`cicd.run` waits). Output: `{}`.',
  input: dispatchInput, output: z.object({}), requires: REQUIRES, effectful: true,
  run: async (c) => {
    const i = inputOf(c, dispatchInput);
    // GitHub takes workflow inputs as text, as the Actions UI does.
    const inputs = Object.fromEntries(Object.entries(i.inputs).map(([k, v]) => [k, String(v)]));
    const { ref } = await onProjectRepo(c, (gh, repo) => gh.dispatchWorkflow(repo, i.workflow, i.ref, inputs));
    c.note('info', `Dispatched workflow ${i.workflow} on ${ref}`);
    return {};
  },
});

export const GITHUB_PLUGINS = [githubComment, githubIssue, githubLabels, githubCommitStatus, githubDeployment, githubDeploymentStatus, githubDispatch];
