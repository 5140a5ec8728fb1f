import type { Services } from '../../container.js';
import { startRunForPerson } from '../actions.js';
import { TRUSTED_ASSOCIATIONS, type IssueRequest } from './events.js';
import { paramsFromIssueBody } from './issue-params.js';
import { renderReply, renderRunStarted, renderUnlinked } from './render.js';
import { callbackOf, personOf, workItemOf } from './thread.js';

/**
 * An issue opened or labelled with a label its project maps to a flow type: the flow starts with
 * the parameters of the issue's ```json block, and the run talks back in the issue. Returns the
 * comment to post, or null when there is nothing to say (the mapping was removed meanwhile).
 * Labelling needs triage rights on the repository; opening an issue counts only for owners,
 * members and collaborators.
 */
export async function answerIssueRequest(s: Services, e: IssueRequest, requestKey: string): Promise<string | null> {
  const project = await s.projects.find(e.repositoryIdentifier);
  const flowType = project?.settings.labelFlows?.[e.label];
  if (!flowType) return null;
  if (e.action === 'opened' && !TRUSTED_ASSOCIATIONS.includes(e.association))
    return renderReply(e.login, `the label \`${e.label}\` starts \`${flowType}\` only for issues opened by owners, members and collaborators of ${e.repositoryIdentifier}; one of them can add the label again.`);
  const person = await personOf(s, e.login);
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
