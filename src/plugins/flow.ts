import { z } from 'zod';
import { stepInputs } from '../core/registry/step-inputs.js';
import { approvalKind, flowKind, waitForEvent } from '../executor/kinds.js';
import { plugin } from './plugin.js';

export const flowApproval = plugin({
  id: 'flow.approval', engineName: 'approval', aliases: ['approval', 'flow.gate'], name: 'Approval gate', category: 'flow',
  description: 'Asks the approvers (project owners, an approver group or listed people) in the run\'s thread and waits for their decision; approved continues, rejected or expired fails the step.',
  input: stepInputs.approval,
  output: z.object({
    approvalId: z.string(), status: z.literal('approved'), approvedBy: z.array(z.string()),
    decisions: z.array(z.object({ email: z.string(), verdict: z.string() }).loose()),
  }),
  run: approvalKind,
});

export const flowWaitForEvent = plugin({
  id: 'flow.wait_for_event', engineName: 'wait_for_event', aliases: ['wait_for_event'], name: 'Wait for an event', category: 'flow',
  description: 'Waits until an event of this name is sent to the run (POST /api/v1/runs/{id}/events); its payload is the output.',
  input: stepInputs.wait_for_event,
  output: z.unknown(),
  run: waitForEvent,
});

export const flowSubflow = plugin({
  id: 'flow.subflow', engineName: 'flow', aliases: ['flow'], name: 'Run a flow', category: 'flow',
  description: 'Runs another flow type as a child run (one per item with forEach, at most 100) and waits for it; its result is the output.',
  input: stepInputs.flow,
  output: z.union([
    z.object({ runId: z.string() }).loose(),
    z.object({ children: z.array(z.object({ runId: z.string(), item: z.unknown(), status: z.string(), result: z.unknown() })) }),
  ]),
  run: flowKind,
});
