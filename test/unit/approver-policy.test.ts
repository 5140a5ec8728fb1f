import { resolveApprovalPolicy } from '../../src/core/approvals/approver-policy.js';

const project = {
  repositoryIdentifier: 'acme/app', owners: ['owner@acme.io', 'second@acme.io'], members: ['dev@acme.io', 'lead@acme.io'],
  settings: { disabledFlowTypes: [], overrides: {}, approverGroups: { security: ['sec@acme.io', 'SEC2@acme.io'], empty: [] } },
};
const rule = (over: Partial<{ quorum: number; allowSelfApproval: boolean; requestedBy: string }> = {}) => ({ quorum: 1, allowSelfApproval: false, requestedBy: 'dev@acme.io', ...over });

test('owners stay live (null); groups and explicit members resolve to emails', () => {
  expect(resolveApprovalPolicy(null, project, rule())).toEqual({ approvers: null });
  expect(resolveApprovalPolicy(['owners'], project, rule())).toEqual({ approvers: null });
  expect(resolveApprovalPolicy(['group:security'], project, rule({ quorum: 2 }))).toEqual({ approvers: ['sec@acme.io', 'sec2@acme.io'] });
  expect(resolveApprovalPolicy(['owners', 'lead@acme.io', 'group:security'], project, rule())).toEqual({
    approvers: ['owner@acme.io', 'second@acme.io', 'lead@acme.io', 'sec@acme.io', 'sec2@acme.io'],
  });
});

test('explicit approvers must belong to the project; unknown or empty groups are refused', () => {
  expect(resolveApprovalPolicy(['buddy@elsewhere.io', 'lead@acme.io'], project, rule())).toEqual({ field: 'approvers', problem: 'buddy@elsewhere.io is not an owner or member of acme/app, so cannot be named as approver' });
  expect(resolveApprovalPolicy(['group:nope'], project, rule())).toMatchObject({ field: 'approvers', problem: 'approver group "nope" is not defined on project acme/app (defined: security, empty)' });
  expect(resolveApprovalPolicy(['group:empty'], project, rule())).toMatchObject({ problem: 'approver group "empty" of project acme/app is empty' });
  expect(resolveApprovalPolicy(null, { ...project, owners: [] }, rule())).toMatchObject({ problem: expect.stringMatching(/has no owners/) });
});

test('the quorum counts only people other than the requester unless self-approval is allowed', () => {
  expect(resolveApprovalPolicy(['dev@acme.io', 'lead@acme.io'], project, rule({ quorum: 2 }))).toEqual({
    field: 'quorum', problem: 'quorum 2 can never be reached: 1 possible approver(s) other than the requester (lead@acme.io)',
  });
  expect(resolveApprovalPolicy(['dev@acme.io', 'lead@acme.io'], project, rule({ quorum: 2, allowSelfApproval: true }))).toEqual({ approvers: ['dev@acme.io', 'lead@acme.io'] });
  expect(resolveApprovalPolicy(null, project, rule({ quorum: 2, requestedBy: 'owner@acme.io' }))).toMatchObject({ field: 'quorum' });
});

test('without a project only explicit emails will do', () => {
  expect(resolveApprovalPolicy(['a@x.io'], null, rule())).toEqual({ approvers: ['a@x.io'] });
  expect(resolveApprovalPolicy(null, null, rule())).toMatchObject({ field: 'approvers' });
  expect(resolveApprovalPolicy(['group:security'], null, rule())).toMatchObject({ field: 'approvers' });
});
