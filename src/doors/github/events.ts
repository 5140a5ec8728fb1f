import type { EmitterWebhookEvent } from '@octokit/webhooks';

type CommentPayload = EmitterWebhookEvent<'issue_comment.created'>['payload'];
type IssuePayload = EmitterWebhookEvent<'issues.opened' | 'issues.labeled'>['payload'];

/**
 * Who may act from a comment at all: people with a standing in the repository. Only a first
 * filter (it spares an API call for strangers): acting needs write permission (`permission.ts`).
 */
export const TRUSTED_ASSOCIATIONS = ['OWNER', 'MEMBER', 'COLLABORATOR'];

/** The part of a delivery the door works with, kept small: it is kept with the delivery for processing. */
interface Base {
  repositoryIdentifier: string;
  issueNumber: number;
  isPullRequest: boolean;
  issueUrl: string;
  login: string;
  /** The sender's numeric GitHub user id: people are keyed by it, since logins can be renamed. */
  userId: number;
  /** The author association of the person (comment author, or issue author for `opened`). */
  association: string;
  installationId?: number;
}

/** A new comment on an issue or pull request. */
export interface CommentEvent extends Base {
  kind: 'comment';
  commentId: number;
  body: string;
}

/** An issue opened or labelled with labels that may map to flow types. */
export interface IssueEvent extends Base {
  kind: 'issue';
  action: 'opened' | 'labeled';
  body: string;
  /** `opened`: every label of the issue; `labeled`: the one added. */
  labels: string[];
}

/** An issue label that a project maps to a flow type: processed once per issue, label and body. */
export interface IssueRequest extends Omit<IssueEvent, 'kind' | 'labels'> {
  kind: 'issue-request';
  label: string;
}

export type InboundEvent = CommentEvent | IssueRequest;

export type Routed = { event: CommentEvent | IssueEvent } | { ignored: string };

/**
 * Reads the events the door acts on from a verified delivery (pure). Comments by bots are ignored —
 * Flowgate's own comments among them — so a bot reply can never trigger another.
 */
export function routeEvent(name: string, payload: unknown): Routed {
  const p = (payload ?? {}) as Partial<CommentPayload>;
  if (!p.repository?.full_name || !p.issue || typeof p.issue.number !== 'number' || !p.sender?.login || !Number.isSafeInteger(p.sender.id) || p.sender.id <= 0) return { ignored: `${name}: not an issue event` };
  const base: Base = {
    repositoryIdentifier: p.repository.full_name,
    issueNumber: p.issue.number,
    isPullRequest: Boolean(p.issue.pull_request),
    issueUrl: p.issue.html_url ?? '',
    login: p.sender.login,
    userId: p.sender.id,
    association: p.issue.author_association ?? 'NONE',
    ...(typeof p.installation?.id === 'number' ? { installationId: p.installation.id } : {}),
  };
  if (name === 'issue_comment') {
    if (p.action !== 'created' || !p.comment) return { ignored: `issue_comment.${String(p.action)}` };
    if (p.sender.type === 'Bot' || p.comment.performed_via_github_app) return { ignored: 'comment by a bot' };
    return { event: { ...base, kind: 'comment', association: p.comment.author_association ?? 'NONE', commentId: p.comment.id, body: p.comment.body ?? '' } };
  }
  if (name === 'issues') {
    const i = payload as Partial<IssuePayload> & { label?: { name?: string } };
    if (i.action !== 'opened' && i.action !== 'labeled') return { ignored: `issues.${String(i.action)}` };
    const labels = i.action === 'labeled' ? [i.label?.name] : (i.issue?.labels ?? []).map((l) => (typeof l === 'string' ? l : l?.name));
    return { event: { ...base, kind: 'issue', action: i.action, body: i.issue?.body ?? '', labels: labels.filter((l): l is string => typeof l === 'string' && l.length > 0) } };
  }
  return { ignored: name };
}
