import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import type { ApprovalCard } from '../approval-cards.js';
import { ApprovalCardView } from './approval-card.js';
import { Page } from './layout.js';

export function InboxPage({ viewer, mine, others }: { viewer: ConsoleIdentity; mine: ApprovalCard[]; others: ApprovalCard[] }) {
  const now = new Date();
  return (
    <Page title="Inbox" viewer={viewer} section="inbox" waiting={mine.length}>
      <div data-live="approvals" aria-live="polite">
        <section aria-labelledby="mine">
          <h2 id="mine">Waiting on you ({mine.length})</h2>
          {mine.length ? mine.map((c) => <ApprovalCardView card={c} viewer={viewer} now={now} />) : <p class="empty">Nothing waits on you.</p>}
        </section>
        <section aria-labelledby="others">
          <h2 id="others">Other pending approvals in your projects ({others.length})</h2>
          {others.length ? others.map((c) => <ApprovalCardView card={c} viewer={viewer} now={now} />) : <p class="empty">None.</p>}
        </section>
      </div>
    </Page>
  );
}

export function ApprovalPage({ viewer, card, problem }: { viewer: ConsoleIdentity; card: ApprovalCard; problem?: string }) {
  return (
    <Page title="Approval" viewer={viewer} section="inbox">
      {problem ? <p class="problem" role="alert">{problem}</p> : null}
      <div data-live="approvals">
        <ApprovalCardView card={card} viewer={viewer} />
      </div>
    </Page>
  );
}
