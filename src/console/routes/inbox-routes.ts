import type Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../../container.js';
import { AppError } from '../../errors.js';
import { inbox, visibleApproval } from '../approval-cards.js';
import { parseFields } from '../form.js';
import { LiveApprovals } from '../live-approvals.js';
import { sendHtml, wantsFragment } from '../render.js';
import { action, page, redirectTo } from '../route.js';
import { ApprovalCardView } from '../views/approval-card.js';
import { ApprovalPage, InboxPage } from '../views/inbox.js';

const Decision = z.discriminatedUnion('verdict', [
  z.object({ verdict: z.literal('approve'), reason: z.string().max(2000).optional() }),
  z.object({ verdict: z.literal('reject'), reason: z.string().trim().min(1, 'say why you reject it').max(2000) }),
], { error: 'verdict must be approve or reject' });
const ApprovalId = z.object({ id: z.uuid('not an approval id') });
/** A section's page: `<requested at, ISO>_<approval id>` of the last card of the page before. */
const cursor = z.string().regex(/^[^_]+_[0-9a-f-]{36}$/i, 'not an inbox page').transform((v, c) => {
  const [at, id] = v.split('_');
  const requestedAt = new Date(at);
  if (Number.isNaN(requestedAt.getTime()) || !z.uuid().safeParse(id).success) {
    c.addIssue({ code: 'custom', message: 'not an inbox page' });
    return z.NEVER;
  }
  return { requestedAt, id };
});
const InboxQuery = z.object({ mine: cursor.optional(), others: cursor.optional() });

/** The approvals inbox, one approval's page (chat links land here), and deciding through `ApprovalService.decide` with door `web`. */
export function mountInboxRoutes(router: Router, s: Services): void {
  const live = new LiveApprovals(s);

  // One stream per page: approvals the viewer may see that changed, from any door or replica.
  router.get('/console/events', page(s, async ({ ctx, viewer }) => {
    live.subscribe(s.consoleStreams.start(ctx), viewer.principal, viewer.person?.email ?? null);
  }));

  router.get('/console', page(s, async ({ ctx, viewer }) => {
    const from = parseFields(InboxQuery, ctx.query);
    const { mine, others } = await inbox(s, viewer, from);
    sendHtml(ctx, InboxPage({ viewer, mine, others, paged: { mine: !!from.mine, others: !!from.others } }));
  }));

  router.get('/console/approvals/:id', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(ApprovalId, ctx.params);
    const card = await visibleApproval(s, id, viewer);
    if (wantsFragment(ctx)) return sendHtml(ctx, ApprovalCardView({ card, viewer }), 200, true);
    sendHtml(ctx, ApprovalPage({ viewer, card }));
  }));

  router.post('/console/approvals/:id/decision', action(s, async ({ ctx, viewer, form }) => {
    const { id } = parseFields(ApprovalId, ctx.params);
    // Visible first: a refusal must not tell a stranger that the id exists.
    await visibleApproval(s, id, viewer);
    const decision = parseFields(Decision, form);
    let problem: string | undefined;
    let status = 200;
    if (!viewer.person) {
      problem = `Token "${viewer.principal.name}" has no email, so it cannot decide approvals`;
      status = 403;
    } else {
      try {
        await s.approvals.decide(id, viewer.person, decision.verdict, decision.reason?.trim() || null, 'web');
      } catch (err) {
        // Refused (403) or already decided (409): show the approval as it now stands, with why.
        if (!(err instanceof AppError) || (err.status !== 403 && err.status !== 409)) throw err;
        problem = err.message;
        status = err.status;
      }
    }
    const card = await visibleApproval(s, id, viewer);
    if (ctx.get('HX-Request') === 'true') {
      // htmx swaps only 2xx answers by default: the card carries the refusal itself.
      return sendHtml(ctx, ApprovalCardView({ card: problem ? { ...card, why: problem } : card, viewer }), 200, true);
    }
    if (problem) return sendHtml(ctx, ApprovalPage({ viewer, card, problem }), status);
    redirectTo(ctx, `/console/approvals/${id}`);
  }));
}
