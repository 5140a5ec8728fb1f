import type Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../../container.js';
import { RUN_STATUSES } from '../../core/status.js';
import { AppError } from '../../errors.js';
import { waitingCount } from '../approval-cards.js';
import { many, parseFields } from '../form.js';
import { sendHtml } from '../render.js';
import { requesterOf, visibleRun } from '../requester.js';
import { runsPage } from '../runs-list.js';
import { action, page } from '../route.js';
import { BulkResultPage, ConfirmBulkPage, DOORS, RunsPage, type BulkOutcome } from '../views/runs.js';

const blankToUndefined = (v: unknown) => (v === '' ? undefined : v);
const date = (end: boolean) => z.preprocess(blankToUndefined, z.iso.date('use YYYY-MM-DD').optional())
  .transform((d) => (d ? new Date(Date.parse(`${d}T00:00:00Z`) + (end ? 86_400_000 : 0)) : undefined));

const RunsQuery = z.object({
  status: many.pipe(z.array(z.enum(RUN_STATUSES, `status must be one of ${RUN_STATUSES.join(', ')}`))),
  flow: z.preprocess(blankToUndefined, z.string().max(200).optional()),
  project: z.preprocess(blankToUndefined, z.string().max(200).optional()),
  requester: z.preprocess(blankToUndefined, z.string().trim().max(320).optional()),
  door: z.preprocess(blankToUndefined, z.enum(DOORS.map((d) => d.value) as [string, ...string[]], `door must be one of ${DOORS.map((d) => d.value).join(', ')}`).optional()),
  since: date(false),
  // "To" is a whole day: runs before the next midnight.
  until: date(true),
  before: z.preprocess(blankToUndefined, z.uuid('not a run id').optional()),
});

const BULK_LIMIT = 100;
const Bulk = z.object({
  action: z.enum(['cancel', 'rerun'], 'action must be cancel or rerun'),
  run: many.pipe(z.array(z.uuid('not a run id')).min(1, 'select at least one run').max(BULK_LIMIT, `at most ${BULK_LIMIT} runs at once`)),
  confirmed: z.literal('yes').optional(),
});

/** The runs list (filters kept in the URL) and its bulk cancel and rerun, through the same core calls as the APIs. */
export function mountRunsRoutes(router: Router, s: Services): void {
  router.get('/console/runs', page(s, async ({ ctx, viewer }) => {
    const filter = parseFields(RunsQuery, ctx.query);
    const [{ runs, next }, waiting] = await Promise.all([runsPage(s, viewer, filter), waitingCount(s, viewer)]);
    const projects = (await s.projects.list(viewer.principal.projects)).map((p) => p.repositoryIdentifier);
    const flows = s.registry.listFor(viewer.principal.projects).map((d) => d.id).sort();
    sendHtml(ctx, RunsPage({ viewer, filter, runs, next, flows, projects, waiting }));
  }));

  router.post('/console/runs/bulk', action(s, async ({ ctx, viewer, form }) => {
    const bulk = parseFields(Bulk, form);
    if (bulk.action === 'cancel' && !bulk.confirmed) return sendHtml(ctx, ConfirmBulkPage({ viewer, ids: bulk.run }));
    const who = requesterOf(viewer);
    const outcomes: BulkOutcome[] = [];
    for (const id of new Set(bulk.run)) {
      try {
        const run = await visibleRun(s, id, viewer);
        if (bulk.action === 'cancel') {
          const cancelled = await s.runs.cancel(run, who);
          outcomes.push({ id, ok: true, text: cancelled.length > 1 ? `cancelled, with ${cancelled.length - 1} run(s) it started` : 'cancelled' });
        } else {
          const again = await s.runs.rerun(run, {}, who);
          outcomes.push({ id, ok: true, text: `rerun as ${again.id}`, newRunId: again.id });
        }
      } catch (err) {
        // Each run is decided on its own: one refusal does not stop the others.
        if (!(err instanceof AppError) || err.status >= 500) throw err;
        outcomes.push({ id, ok: false, text: err.message });
      }
    }
    sendHtml(ctx, BulkResultPage({ viewer, action: bulk.action, outcomes, back: '/console/runs' }));
  }));
}
