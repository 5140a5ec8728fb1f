import { step } from '../inbound.js';
import { approvalOfThread } from '../actions.js';
import { act, reply } from './act.js';
import { d, READ } from './context.js';
import { threadOf, type Candidate, type PersonOrWhy } from './read.js';
import { renderRefusal, renderReply } from './render.js';

type Target = { kind: 'one'; id: string; status: string; repositoryIdentifier: string } | { kind: 'none' } | { kind: 'explain'; text: string };

/**
 * A decision from this work item: the approval posted to it (the one named, or the only pending
 * one), decided by the person through the core (same rules as every door). A refusal is explained
 * in a comment and the approval stays pending; several pending and none named decides nothing
 * and lists them.
 */
export async function decide(project: string, workItemId: number, candidates: Candidate[], actor: PersonOrWhy, verdict: 'approve' | 'reject', reason: string | null,
  what: string, key: string, explainMissing: boolean, approvalId?: string): Promise<void> {
  const target = await step('approval', async (): Promise<Target> => {
    const t = await approvalOfThread(d().s, threadOf(candidates, workItemId), approvalId, (id) => `/${verdict} ${id}${verdict === 'reject' ? ' <reason>' : ''}`);
    if (t.ok) return { kind: 'one', id: t.approval.id, status: t.approval.status, repositoryIdentifier: t.approval.repositoryIdentifier ?? '' };
    return t.why === 'none' ? { kind: 'none' } : { kind: 'explain', text: t.text };
  }, READ);
  if (target.kind === 'explain') return reply(project, workItemId, renderReply(`${what} did nothing`, target.text));
  if (target.kind === 'none' || target.status !== 'pending') {
    if (explainMissing) await reply(project, workItemId, renderReply(`${what} did nothing`, target.kind === 'one' ? `The approval on this work item is already ${target.status}.` : 'No Flowgate approval is pending on this work item.'));
    return;
  }
  if (!actor.person) return reply(project, workItemId, renderRefusal(actor.uniqueName, what, actor.why!, true));
  const outcome = await act(`decide:${target.repositoryIdentifier}:${workItemId}:${key}`, { kind: 'decide', approvalId: target.id, person: actor.person, verdict, reason });
  if (outcome.ok) return; // the approval's own update (vote or decision) is commented by the destination
  const stillPending = await step('still-pending', async () => (await d().s.approvals.get(target.id))?.status === 'pending', READ);
  await reply(project, workItemId, renderRefusal(actor.person.email, what, outcome.text, stillPending));
}
