import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import type { ApprovalCard } from '../approval-cards.js';
import { Csrf, relative, Status, Time } from './layout.js';

const json = (v: unknown) => JSON.stringify(v, null, 2);

/** One approval: what it is bound to, who decided where, who still can, and the viewer's buttons or why there are none. */
export function ApprovalCardView({ card, viewer, now = new Date() }: { card: ApprovalCard; viewer: ConsoleIdentity; now?: Date }) {
  const a = card.approval;
  const id = `approval-${a.id}`;
  const headingId = `${id}-title`;
  const soon = a.status === 'pending' && a.expiresAt.getTime() - now.getTime() < 3_600_000;
  return (
    <article class={`approval${soon ? ' expiring' : ''}`} id={id} data-approval={a.id} data-status={a.status} aria-labelledby={headingId}>
      <header>
        <h3 id={headingId}>
          <a href={`/console/approvals/${a.id}`}>{card.flow ?? 'Approval'}</a>
          {a.stepRef ? <span class="muted"> · step {a.stepRef}</span> : null}
        </h3>
        <Status status={a.status} />
      </header>
      {a.message ? <p class="message">{a.message}</p> : null}
      <dl class="facts">
        <dt>Requested by</dt><dd>{a.requestedBy}</dd>
        <dt>Project</dt><dd>{a.repositoryIdentifier ?? '—'}</dd>
        <dt>Asked</dt><dd><Time at={a.requestedAt} /> ({relative(a.requestedAt, now)})</dd>
        <dt>Expires</dt><dd><Time at={a.expiresAt} /> ({relative(a.expiresAt, now)}){soon ? <strong> — soon</strong> : null}</dd>
        <dt>Where</dt>
        <dd>{card.where.length ? card.where.map((p, i) => <>{i ? ', ' : ''}{p.href ? <a href={p.href} rel="noreferrer">{p.label}</a> : p.label}</>) : 'REST only'}</dd>
        {a.runId ? <><dt>Run</dt><dd><a href={`/console/runs/${a.runId}`}>{a.runId}</a>{card.runStatus ? <> (<Status status={card.runStatus} />)</> : null}</dd></> : null}
        <dt>Quorum</dt>
        <dd>
          <span class="quorum">{card.approvedBy.length} of {a.quorum} approvals</span>
          {card.approvedBy.length ? <> — approved by {card.approvedBy.map((d) => `${d.email} (${d.door})`).join(', ')}</> : null}
        </dd>
        <dt>Still able to approve</dt><dd>{card.stillCan.length ? card.stillCan.join(', ') : 'nobody'}</dd>
      </dl>
      {card.payload ? (
        <details>
          <summary>Parameters this approval is bound to</summary>
          <pre>{json(card.payload)}</pre>
        </details>
      ) : null}
      {card.canApprove || card.canReject ? (
        <div class="decide">
          {card.canApprove ? (
            <form method="post" action={`/console/approvals/${a.id}/decision`} hx-post={`/console/approvals/${a.id}/decision`} hx-target={`#${id}`} hx-swap="outerHTML">
              <Csrf viewer={viewer} />
              <input type="hidden" name="verdict" value="approve" />
              <button type="submit" class="approve">Approve</button>
            </form>
          ) : null}
          {card.canReject ? (
            <form method="post" action={`/console/approvals/${a.id}/decision`} hx-post={`/console/approvals/${a.id}/decision`} hx-target={`#${id}`} hx-swap="outerHTML" class="reject">
              <Csrf viewer={viewer} />
              <input type="hidden" name="verdict" value="reject" />
              <label for={`${id}-reason`}>Reason for rejecting</label>
              <input id={`${id}-reason`} name="reason" required maxLength={2000} />
              <button type="submit" class="reject">Reject</button>
            </form>
          ) : null}
        </div>
      ) : null}
      {card.why ? <p class="why" data-why>{card.canApprove || card.canReject ? 'Note: ' : 'You cannot decide this: '}{card.why}</p> : null}
    </article>
  );
}
