import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { INBOX_PAGE, type ApprovalCard, type InboxCursor, type InboxSection } from '../approval-cards.js';
import { ApprovalCardView } from './approval-card.js';
import { Page } from './layout.js';

const cursorParam = (c: InboxCursor) => `${c.requestedAt.toISOString()}_${c.id}`;

/** "(12)", or "(200+)" when more follow; a later page says so instead of counting. */
const countOf = (section: InboxSection, paged: boolean) => (paged ? 'older' : section.more ? `${INBOX_PAGE}+` : String(section.cards.length));

function Section({ id, title, empty, section, paged, viewer, now }: { id: 'mine' | 'others'; title: string; empty: string; section: InboxSection; paged: boolean; viewer: ConsoleIdentity; now: Date }) {
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{title} ({countOf(section, paged)})</h2>
      {section.cards.length ? section.cards.map((c) => <ApprovalCardView card={c} viewer={viewer} now={now} />) : <p class="empty">{empty}</p>}
      {section.more || paged ? (
        <nav class="pager" aria-label={`${title}: pages`}>
          {paged ? <a href={`/console#${id}`}>Newest</a> : null}{' '}
          {section.more ? <a href={`/console?${id}=${encodeURIComponent(cursorParam(section.more))}#${id}`} rel="next">Older approvals</a> : null}
        </nav>
      ) : null}
    </section>
  );
}

export function InboxPage({ viewer, mine, others, paged }: { viewer: ConsoleIdentity; mine: InboxSection; others: InboxSection; paged: { mine: boolean; others: boolean } }) {
  const now = new Date();
  return (
    <Page title="Inbox" viewer={viewer} section="inbox" waiting={paged.mine ? undefined : mine.cards.length + (mine.more ? 1 : 0)}>
      <div data-live="approvals" aria-live="polite">
        <Section id="mine" title="Waiting on you" empty="Nothing waits on you." section={mine} paged={paged.mine} viewer={viewer} now={now} />
        <Section id="others" title="Other pending approvals in your projects" empty="None." section={others} paged={paged.others} viewer={viewer} now={now} />
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
