import { DBOS } from '@dbos-inc/dbos-sdk';
import type { Person } from '../../core/approvals/approval-rules.js';
import type { StatusReport } from '../../core/cicd/cicd-store.js';
import type { Callback, WorkItemRef } from '../../db/entities/run.js';
import { AppError } from '../../errors.js';
import { cancelForPerson, controlForPerson, decideForPerson, startRunForPerson } from '../actions.js';
import { step } from '../inbound.js';
import { d, DOOR, READ } from './context.js';

// Core calls: each runs in a workflow of its own with a deterministic id (from what the event
// acts on, not the event's id), so one comment or state change acts once, however many events
// (a redelivery, a second service hook subscription) or attempts ask for it, and each gets that outcome.

export type Act =
  | { kind: 'start'; key: string; flowType: string; params: Record<string, string>; repositoryIdentifier: string; person: Person; callback: Callback; workItemRef: WorkItemRef }
  | { kind: 'decide'; approvalId: string; person: Person; verdict: 'approve' | 'reject'; reason: string | null }
  | { kind: 'cancel'; runId: string; person: Person }
  | { kind: 'pause' | 'resume' | 'retry'; runId: string; person: Person }
  | { kind: 'report'; runId: string; report: StatusReport };

export type ActOutcome = { ok: true; runId?: string; taskType?: string; status?: string; text?: string } | { ok: false; text: string };

async function actImpl(act: Act): Promise<ActOutcome> {
  const { s } = d();
  switch (act.kind) {
    case 'start': {
      const r = await startRunForPerson(s, {
        flowType: act.flowType, params: act.params, repositoryIdentifier: act.repositoryIdentifier, person: act.person,
        callback: act.callback, workItemRef: act.workItemRef, deliveryId: act.key, door: DOOR,
      });
      return r.ok ? { ok: true, runId: r.value.id, taskType: r.value.taskType, status: r.value.status } : r;
    }
    case 'decide': {
      const r = await decideForPerson(s, act.approvalId, act.person, act.verdict, act.reason, DOOR);
      if (r.ok) return { ok: true, status: r.value };
      // Already decided, and this person's own decision is among the decisions: a repeat, not a refusal.
      const a = await s.approvals.get(act.approvalId);
      if (a && a.decisions.some((x) => x.email === act.person.email.toLowerCase() && x.verdict === act.verdict)) return { ok: true, status: a.status };
      return r;
    }
    case 'cancel': {
      const run = await s.store.findById(act.runId);
      if (!run) return { ok: false, text: `Run ${act.runId} not found` };
      const r = await cancelForPerson(s, run, act.person, DOOR);
      return r.ok ? { ok: true, runId: run.id, taskType: run.taskType, status: 'cancelled' } : r;
    }
    case 'pause':
    case 'resume':
    case 'retry': {
      const run = await s.store.findById(act.runId);
      if (!run) return { ok: false, text: `Run ${act.runId} not found` };
      const r = await controlForPerson(s, run, act.person, DOOR, act.kind);
      return r.ok ? { ok: true, runId: run.id, taskType: run.taskType, text: r.value } : r;
    }
    case 'report': {
      const run = await s.store.findById(act.runId);
      if (!run) return { ok: false, text: `Run ${act.runId} not found` };
      try {
        const r = await s.cicd.report(run, act.report, { name: 'azure-pipelines', door: DOOR });
        return { ok: true, runId: run.id, status: r.status };
      } catch (err) {
        if (err instanceof AppError && err.status < 500) return { ok: false, text: err.message };
        throw err;
      }
    }
  }
}

const actWorkflow = DBOS.registerWorkflow(actImpl, { name: 'flowgate.azure-devops.act' });

export async function act(id: string, a: Act): Promise<ActOutcome> {
  const handle = await DBOS.startWorkflow(actWorkflow, { workflowID: `azure-devops:${id}` })(a);
  return handle.getResult();
}

// Writing back: replies are comments on the work item, each posted once (a recorded step).

export async function reply(project: string, workItemId: number, html: string): Promise<void> {
  await step('reply', async () => { await d().client.addComment(project, workItemId, html); }, READ);
}

export function callbackFor(repositoryIdentifier: string, project: string, workItemId: number): Callback {
  return { type: 'azure-devops', azureDevOps: { repositoryIdentifier, workItemId, project } };
}

export function workItemRefFor(project: string, workItemId: number): WorkItemRef {
  const { settings, org } = d();
  return { type: 'ado-workitem', key: String(workItemId), organization: org, project, url: `${settings.orgUrl}/${encodeURIComponent(project)}/_workitems/edit/${workItemId}` };
}
