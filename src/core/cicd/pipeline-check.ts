import type { StatusReport } from './cicd-store.js';

/** What the provider's API says about one pipeline run (for GitHub Actions: GET /repos/{o}/{r}/actions/runs/{id}). */
export interface PipelineRunFacts {
  id: string;
  /** The workflow file, e.g. `.github/workflows/build.yml`. */
  workflowPath: string | null;
  workflowId: string | null;
  /** What started it, e.g. `workflow_dispatch`. */
  event: string | null;
  createdAt: Date | null;
  /** `queued`, `in_progress`, `completed`, ... */
  status: string | null;
  /** Set once `status` is `completed`: `success`, `failure`, `cancelled`, `timed_out`, ... */
  conclusion: string | null;
  url: string | null;
}

export type EndStatus = 'completed' | 'failed' | 'cancelled';

/** GitHub's clock and ours may differ a little; a run created this long before the execution still counts as after it. */
export const CLOCK_SKEW_MS = 60_000;

/**
 * Why a pipeline run is not the one dispatched for an execution (undefined: it is): it must run
 * the dispatched workflow, be started by a dispatch, and be created after the execution was.
 */
export function identityProblem(facts: PipelineRunFacts, expected: { workflow: string; notBefore: Date }): string | undefined {
  const file = expected.workflow.replace(/^\.github\/workflows\//, '');
  const path = facts.workflowPath ?? '';
  const sameWorkflow = path === `.github/workflows/${file}` || path.endsWith(`/${file}`) || facts.workflowId === expected.workflow;
  if (!sameWorkflow) return `GitHub Actions run ${facts.id} belongs to ${path || `workflow ${facts.workflowId ?? 'unknown'}`}, not to the dispatched workflow ${file}`;
  if (facts.event !== 'workflow_dispatch') return `GitHub Actions run ${facts.id} was started by ${facts.event ?? 'an unknown event'}, not by a dispatch`;
  if (!facts.createdAt || facts.createdAt.getTime() < expected.notBefore.getTime() - CLOCK_SKEW_MS)
    return `GitHub Actions run ${facts.id} was created ${facts.createdAt?.toISOString() ?? 'at an unknown time'}, before the execution was dispatched (${expected.notBefore.toISOString()})`;
  return undefined;
}

/** How a concluded pipeline run ends its execution; null while it has not concluded. */
export function endOf(facts: PipelineRunFacts): EndStatus | null {
  if (facts.status !== 'completed' || !facts.conclusion) return null;
  if (facts.conclusion === 'success') return 'completed';
  if (facts.conclusion === 'cancelled' || facts.conclusion === 'skipped') return 'cancelled';
  return 'failed';
}

/** Whether a terminal report agrees with how the pipeline run ended (`partial` is a kind of success). */
export function reportMatches(reported: StatusReport['status'], end: EndStatus): boolean {
  return (reported === 'partial' ? 'completed' : reported) === end;
}
