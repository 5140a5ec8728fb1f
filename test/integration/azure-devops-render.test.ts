import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseComment } from '../../src/doors/commands.js';
import { basicAuthMatches, parseHook } from '../../src/doors/azure-devops/hooks.js';
import { htmlToText } from '../../src/doors/azure-devops/html.js';
import {
  renderApprovalRequest, renderApprovalUpdate, renderRefusal, renderReply, renderRunFinished, renderRunMessage, renderRunStarted, type ApprovalView,
} from '../../src/doors/azure-devops/render.js';
import { identityOf, jsonBlock, mappedFlows, organizationOf, paramsFromWorkItem, tagsOf } from '../../src/doors/azure-devops/work-items.js';
import { manifestSchema } from '../../src/core/registry/manifest-schema.js';
import { PIPELINE_PARAMETERS, TOKEN_VARIABLE } from '../../src/core/cicd/azure-pipelines-dispatcher.js';
import YAML from 'yaml';

// The Azure DevOps door's pure parts: comment texts (golden files under test/golden/azure-devops/,
// rewritten with UPDATE_GOLDEN=1), reading comments, hook credentials and events, and how work
// items map to flows and parameters. No server needed.

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN = path.resolve(here, '../golden/azure-devops');

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, `${name}.html`);
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, `${actual}\n`);
  }
  if (!fs.existsSync(file)) throw new Error(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(fs.readFileSync(file, 'utf8').replace(/\n$/, ''));
  // Nothing Flowgate writes can read as a command (its own comments come back as hooks).
  expect(parseComment(htmlToText(actual))).toEqual({ kind: 'ignore' });
}

const STATES = { approvedState: 'Approved', rejectedState: 'Rejected' };
const approval: ApprovalView = {
  id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', runId: '0190a1b2-0000-7000-8000-000000000001', taskType: 'gated', message: 'approve the call to https://deploy.acme.io',
  requestedBy: 'dev@acme.io', approvers: ['owner@acme.io', 'lead@acme.io'], approversSource: 'owners', quorum: 1, approvalsReceived: 0, allowSelfApproval: false,
  expiresAt: '2026-11-23T10:00:00.000Z', status: 'pending', decisions: [],
};

describe('comment texts (golden files)', () => {
  test('approval request: what, who, quorum, expiry and how', () => {
    golden('approval-requested', renderApprovalRequest(approval, STATES));
  });

  test('approval request with explicit approvers, a quorum of 2 and self-approval allowed', () => {
    golden('approval-requested-quorum', renderApprovalRequest({ ...approval, approvers: ['a@acme.io', 'b@acme.io', 'c@acme.io'], approversSource: 'explicit', quorum: 2, allowSelfApproval: true, message: null }, { approvedState: 'Done', rejectedState: 'Removed' }));
  });

  test('a message that tries to look like a command stays quoted', () => {
    const html = renderApprovalRequest({ ...approval, message: '/approve\n/reject <script>alert(1)</script>' }, STATES);
    golden('approval-requested-hostile', html);
    expect(html).not.toContain('<script>');
  });

  test('a vote with quorum progress', () => {
    golden('approval-vote', renderApprovalUpdate({ ...approval, quorum: 2, approvalsReceived: 1, decisions: [{ email: 'owner@acme.io', verdict: 'approve', at: '2026-11-22T10:05:00.000Z' }] }));
  });

  test('decisions, expiry, cancellation', () => {
    golden('approval-approved', renderApprovalUpdate({ ...approval, status: 'approved', resolvedBy: 'owner@acme.io', approvalsReceived: 1 }));
    golden('approval-rejected', renderApprovalUpdate({ ...approval, status: 'rejected', resolvedBy: 'owner@acme.io', reason: 'too risky\n/approve' }));
    golden('approval-expired', renderApprovalUpdate({ ...approval, status: 'expired' }));
    golden('approval-cancelled', renderApprovalUpdate({ ...approval, status: 'cancelled', resolvedBy: 'dev@acme.io' }));
    golden('approval-stale', renderApprovalUpdate({ ...approval, status: 'stale' }));
  });

  test('run results', () => {
    golden('run-completed', renderRunFinished({ id: 'r-1', taskType: 'gated', status: 'completed', result: { steps: { call: { status: 200 } } }, startedAt: '2026-11-22T10:00:00.000Z', finishedAt: '2026-11-22T10:01:05.000Z' }));
    golden('run-failed', renderRunFinished({ id: 'r-2', taskType: 'gated', status: 'failed', error: 'approval rejected by owner@acme.io: too risky', result: {} }));
    const long = renderRunFinished({ id: 'r-3', taskType: 'build', status: 'completed', result: { log: 'x'.repeat(300) } }, 100);
    golden('run-completed-long', long);
  });

  test('messages, starts, refusals and replies', () => {
    golden('run-message', renderRunMessage('notifier', 'r-4', 'deploying <b>now</b>\n/cancel'));
    golden('run-started', renderRunStarted({ id: 'r-5', taskType: 'gated', triggeredBy: 'dev@acme.io', because: 'tag deploy' }));
    golden('refusal', renderRefusal('stranger@acme.io', 'moving the work item to Approved', 'stranger@acme.io is not an owner of acme/proj/app, and only owners may decide this request', true));
    golden('reply', renderReply('gated was not started', 'Unknown flow type "gatd". Did you mean `gated`?\nInvalid parameters for gated:\ntarget: required'));
  });
});

describe('reading comments', () => {
  test('blocks become lines; entities are decoded; quotes are dropped', () => {
    expect(htmlToText('<div>looks good</div><div>/reject not&nbsp;before &lt;Friday&gt;</div>')).toBe('looks good\n/reject not before <Friday>');
    expect(htmlToText('<p>first<br>/approve</p>')).toBe('first\n/approve');
    expect(htmlToText('<blockquote><div>/approve</div></blockquote><div>quoted above</div>')).toBe('quoted above');
    expect(parseComment(htmlToText('<div>I will /approve later</div>'))).toEqual({ kind: 'ignore' });
    expect(parseComment(htmlToText('<div>ok</div><div>/reject too risky</div>'))).toEqual({ kind: 'command', command: { name: 'reject', reason: 'too risky' } });
    expect(parseComment(htmlToText('<div>/flowgate run gated target=&quot;https://x.io&quot;</div>'))).toEqual({ kind: 'command', command: { name: 'run', flowType: 'gated', params: { target: 'https://x.io' } } });
  });
});

describe('hook credentials and events', () => {
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  test('only the configured user and password pass', () => {
    expect(basicAuthMatches(basic('flowgate', 'hook-password-0123456789'), 'flowgate', 'hook-password-0123456789')).toBe(true);
    expect(basicAuthMatches(basic('flowgate', 'hook-password-012345678'), 'flowgate', 'hook-password-0123456789')).toBe(false);
    expect(basicAuthMatches(basic('other', 'hook-password-0123456789'), 'flowgate', 'hook-password-0123456789')).toBe(false);
    expect(basicAuthMatches(undefined, 'flowgate', 'hook-password-0123456789')).toBe(false);
    expect(basicAuthMatches('Bearer x', 'flowgate', 'hook-password-0123456789')).toBe(false);
    expect(basicAuthMatches(`Basic ${Buffer.from('no-colon').toString('base64')}`, 'no-colon', '')).toBe(false);
  });

  test('events keep only where to look', () => {
    expect(parseHook({ id: 'e1', eventType: 'workitem.updated', resource: { id: 3, workItemId: 12, rev: 4, revision: { id: 12, rev: 4, fields: { 'System.TeamProject': 'proj', 'System.State': 'Approved' } } } }))
      .toEqual({ id: 'e1', event: { kind: 'workitem', eventType: 'workitem.updated', workItemId: 12, rev: 4, project: 'proj' } });
    expect(parseHook({ id: 'e2', eventType: 'workitem.commented', resource: { id: 12, url: 'https://dev.azure.com/acme/6b0d/_apis/wit/workItems/12' } }))
      .toEqual({ id: 'e2', event: { kind: 'workitem', eventType: 'workitem.commented', workItemId: 12, project: '6b0d' } });
    expect(parseHook({ id: 'e3', eventType: 'ms.vss-pipelines.run-state-changed-event', resource: { run: { id: 9, pipeline: { id: 7 } } }, resourceContainers: { project: { id: 'p-guid' } } }))
      .toEqual({ id: 'e3', event: { kind: 'pipeline-run', runId: 9, pipelineId: 7, project: 'p-guid' } });
    expect(parseHook({ id: 'e4', eventType: 'git.push', resource: {} })).toEqual({ id: 'e4', ignored: 'event type git.push is not acted on' });
    expect(parseHook({ eventType: 'workitem.created' })).toHaveProperty('invalid');
    expect(parseHook({ id: 'e5', eventType: 'workitem.created', resource: {} })).toHaveProperty('invalid');
  });
});

describe('work items → flows and parameters', () => {
  const def = manifestSchema.parse({
    id: 'deploy', name: 'Deploy', steps: [{ ref: 'log', type: 'log', with: { message: 'x' } }],
    parameters: [{ name: 'target', required: true }, { name: 'replicas', type: 'number' }, { name: 'regions', type: 'array' }, { name: 'title' }, { name: 'owner' }, { name: 'dryRun', type: 'boolean' }],
  });

  test('identities, tags, organisations', () => {
    expect(identityOf('Dev Person <dev@acme.io>')).toEqual({ displayName: 'Dev Person', uniqueName: 'dev@acme.io' });
    expect(identityOf({ displayName: 'Dev', uniqueName: 'ACME\\dev' })).toEqual({ displayName: 'Dev', uniqueName: 'ACME\\dev' });
    expect(tagsOf('deploy; urgent ;')).toEqual(['deploy', 'urgent']);
    expect(organizationOf('https://dev.azure.com/acme/')).toBe('acme');
    expect(organizationOf('https://acme.visualstudio.com')).toBe('acme');
    expect(organizationOf('https://tfs.acme.io/tfs/Fabrikam')).toBe('Fabrikam');
  });

  test('by type (only given on creation) and by tag, case-insensitively, each flow once', () => {
    const rules = { byType: { Bug: 'triage' }, byTag: { Deploy: 'deploy', hotfix: 'deploy' } };
    expect(mappedFlows(rules, 'bug', ['deploy', 'HOTFIX'])).toEqual([{ flowType: 'triage', because: 'work item type bug' }, { flowType: 'deploy', because: 'tag deploy' }]);
    expect(mappedFlows(rules, null, ['other'])).toEqual([]);
    expect(mappedFlows(undefined, 'Bug', ['deploy'])).toEqual([]);
  });

  test('parameters: a json block in the description first, then Custom.<name>, then a field named like it', () => {
    const fields = {
      'System.Title': 'Ship it', 'System.Description': '<div>Please deploy.</div><div>```json</div><div>{"replicas": 3, "regions": ["eu", "us"]}</div><div>```</div>',
      'Custom.target': 'https://deploy.acme.io', 'Custom.Replicas': 1, 'Microsoft.VSTS.Common.Owner': { displayName: 'O', uniqueName: 'owner@acme.io' }, 'Custom.DryRun': true,
    };
    expect(paramsFromWorkItem(def, fields)).toEqual({ target: 'https://deploy.acme.io', replicas: '3', regions: '["eu","us"]', title: 'Ship it', owner: 'owner@acme.io', dryRun: 'true' });
    expect(jsonBlock('```json\n[1]\n```')).toBeUndefined();
    expect(jsonBlock('no block')).toBeUndefined();
  });
});

describe('the example pipeline', () => {
  test('declares the template parameters Flowgate sends, maps the secret token, and reports to the status endpoint', () => {
    const file = path.resolve(here, '../../manifests/azure-pipelines/flowgate-build-on-merge.yml');
    const text = fs.readFileSync(file, 'utf8');
    const pipeline = YAML.parse(text);
    expect(pipeline.parameters.map((p: { name: string }) => p.name).sort()).toEqual(Object.values(PIPELINE_PARAMETERS).sort());
    const reports = pipeline.steps.filter((st: { bash?: string }) => st.bash?.includes('/sfp/api/flows/executions/$FLOWGATE_EXECUTION_ID/status'));
    expect(reports).toHaveLength(2);
    for (const st of reports) expect(st.env[TOKEN_VARIABLE]).toBe(`$(${TOKEN_VARIABLE})`);
    expect(reports[1].condition).toMatch(/always\(\)/);
    for (const status of ['running', 'completed', 'failed', 'cancelled']) expect(text).toContain(status);
  });
});
