import type { Services } from '../../container.js';
import { startRunForPerson } from '../actions.js';
import type { IssueRequest } from './events.js';
import { paramsFromIssueBody } from './issue-params.js';
import { refusalFor, type RepoPermissions } from './permission.js';
import { renderReply, renderRunStarted, renderUnlinked } from './render.js';
import { callbackOf, personOf, workItemOf } from './thread.js';

/**
 * An issue opened or labelled with a label its project maps to a flow type: the flow starts with
 * the parameters of the issue's ```json block, and the run talks back in the issue. Returns the
 * comment to post, or null when there is nothing to say (the mapping was removed meanwhile).
 * Opening an issue counts only for owners, members and collaborators; either way the sender (who
 * opened it, or who added the label) needs write access to the repository, as a command does.
 */
export async function answerIssueRequest(s: Services, permissions: RepoPermissions, e: IssueRequest, requestKey: string): Promise<string | null> {
  const project = await s.projects.find(e.repositoryIdentifier);
  const flowType = project?.settings.labelFlows?.[e.label];
  if (!flowType) return null;
  // The event's association is the issue author's: it speaks for the sender only when they opened it.
  const sender = { ...e, association: e.action === 'opened' ? e.association : undefined };
  const refused = await refusalFor(s, permissions, sender, 'start flows', { label: e.label, issueNumber: e.issueNumber });
  if (refused) return renderReply(e.login, `the label \`${e.label}\` starts \`${flowType}\`, but it did not start: ${refused.replace(/^only/, 'Only')} Someone with write access can edit the issue and add the label again.`);
  const person = await personOf(s, e);
  if (!person) return renderUnlinked(e.login);
  const read = paramsFromIssueBody(e.body);
  if ('problem' in read)
    return renderReply(e.login, `the label \`${e.label}\` starts \`${flowType}\`, but it did not start: ${read.problem} Edit the issue and add the label again.`);
  const started = await startRunForPerson(s, {
    flowType, params: read.params, repositoryIdentifier: e.repositoryIdentifier, person,
    callback: callbackOf(e), workItemRef: workItemOf(e), deliveryId: requestKey, door: 'github',
  });
  if (!started.ok) return renderReply(e.login, `the label \`${e.label}\` starts \`${flowType}\`, but it did not start: ${started.text}\n\nEdit the issue's \`\`\`json block and add the label again.`);
  return renderRunStarted(e.login, started.value);
}
