import { loadConfig, ConfigError } from '../../src/config.js';
import { CLOCK_SKEW_MS, endOf, identityProblem, reportMatches, type PipelineRunFacts } from '../../src/core/cicd/pipeline-check.js';

const dispatchedAt = new Date('2026-11-29T10:00:00Z');
const run = (over: Partial<PipelineRunFacts> = {}): PipelineRunFacts => ({
  id: '42', workflowPath: '.github/workflows/build.yml', workflowId: '1001', event: 'workflow_dispatch',
  createdAt: new Date(dispatchedAt.getTime() + 5_000), status: 'in_progress', conclusion: null, url: null, ...over,
});
const expected = { workflow: 'build.yml', notBefore: dispatchedAt };

test('a pipeline run is the dispatched one only for the workflow, a dispatch, and a creation after the execution (within the clock skew)', () => {
  expect(identityProblem(run(), expected)).toBeUndefined();
  expect(identityProblem(run({ workflowPath: null, workflowId: '1001' }), { ...expected, workflow: '1001' })).toBeUndefined();
  expect(identityProblem(run({ createdAt: new Date(dispatchedAt.getTime() - CLOCK_SKEW_MS + 1) }), expected)).toBeUndefined();
  expect(identityProblem(run({ workflowPath: '.github/workflows/deploy.yml' }), expected)).toMatch(/belongs to \.github\/workflows\/deploy\.yml/);
  expect(identityProblem(run({ workflowPath: '.github/workflows/prebuild.yml' }), expected)).toMatch(/not to the dispatched workflow build\.yml/);
  expect(identityProblem(run({ event: 'push' }), expected)).toMatch(/started by push/);
  expect(identityProblem(run({ createdAt: new Date(dispatchedAt.getTime() - CLOCK_SKEW_MS - 1) }), expected)).toMatch(/before the execution was dispatched/);
  expect(identityProblem(run({ createdAt: null }), expected)).toMatch(/at an unknown time/);
});

test('the conclusion decides how the execution ends; a report matches only its own outcome', () => {
  expect(endOf(run())).toBeNull();
  expect(endOf(run({ status: 'completed', conclusion: null }))).toBeNull();
  expect(endOf(run({ status: 'completed', conclusion: 'success' }))).toBe('completed');
  for (const c of ['failure', 'timed_out', 'startup_failure', 'action_required', 'neutral']) expect(endOf(run({ status: 'completed', conclusion: c }))).toBe('failed');
  for (const c of ['cancelled', 'skipped']) expect(endOf(run({ status: 'completed', conclusion: c }))).toBe('cancelled');
  expect(reportMatches('completed', 'completed')).toBe(true);
  expect(reportMatches('partial', 'completed')).toBe(true);
  expect(reportMatches('completed', 'failed')).toBe(false);
  expect(reportMatches('failed', 'cancelled')).toBe(false);
  expect(reportMatches('cancelled', 'cancelled')).toBe(true);
});

test('retention settings default to 90 days (audit 365) and refuse what is not a whole number of days', () => {
  expect(loadConfig({})).toMatchObject({ retentionDays: 90, auditRetentionDays: 365 });
  expect(loadConfig({ FLOWGATE_RETENTION_DAYS: '30', FLOWGATE_AUDIT_RETENTION_DAYS: '730' })).toMatchObject({ retentionDays: 30, auditRetentionDays: 730 });
  let problems: string[] = [];
  try { loadConfig({ FLOWGATE_RETENTION_DAYS: '0', FLOWGATE_AUDIT_RETENTION_DAYS: 'soon' }); } catch (err) { problems = (err as ConfigError).problems; }
  expect(problems).toEqual([expect.stringMatching(/^FLOWGATE_RETENTION_DAYS: at least 1 day/), expect.stringMatching(/^FLOWGATE_AUDIT_RETENTION_DAYS: /)]);
});
