import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Services } from '../../container.js';
import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { canAccessProject } from '../../core/identity/principal.js';
import { formatLogLine } from '../../core/logs/log-format.js';
import { checkLogOffset, readLogTreePage } from '../../core/logs/log-stream.js';
import type { Run } from '../../db/entities/run.js';
import { AppError } from '../../errors.js';
import { requireEngine } from '../../http/workflow-runs/visible-run.js';
import { parseFields } from '../form.js';
import { sendHtml } from '../render.js';
import { requesterOf } from '../requester.js';
import { visibleRunFor } from '../run-actions.js';
import { RunStreams } from '../run-live.js';
import { runPageData } from '../run-page.js';
import { action, page, redirectTo } from '../route.js';
import { SESSION_COOKIE } from '../session.js';
import { ConfirmPage, RunPage, type ConfirmAction } from '../views/run.js';

const RunParams = z.object({ id: z.string().min(1).max(200).regex(/^[A-Za-z0-9._:-]+$/, 'not a run id') });
const StepParams = RunParams.extend({ ref: z.string().min(1).max(200).regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'not a step ref') });
/**
 * Where a live stream starts: the browser's `Last-Event-ID` (a reconnect), else the page's offset
 * after its last shown line, else the start. An offset is a line number, or once the run has child
 * runs a token naming a line of each (see core/logs/log-stream.ts).
 */
const LogOffset = z.string().max(16_000).regex(/^[A-Za-z0-9_-]*$/, 'not a log offset');
const Offset = z.object({ lastEventId: LogOffset.optional(), after: LogOffset.optional() });
const SkipForm = z.object({ reason: z.string().trim().max(2000).optional() });
const ForceCompleteForm = z.object({
  result: z.string().max(64 * 1024).optional().transform((text, ctx) => {
    if (!text?.trim()) return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not valid JSON (leave it empty for no output)' });
      return z.NEVER;
    }
  }),
});

const runUrl = (id: string) => `/console/runs/${id}`;
const LOG_PAGE = 2_000;

/** The log of a run and its child runs as text, by time, read page by page so a long log never sits in memory whole. */
async function* logText(s: Services, runId: string): AsyncGenerator<string> {
  let after: string | undefined;
  for (;;) {
    const page = await readLogTreePage(s.orm, runId, after, { limit: LOG_PAGE });
    if (!page.lines.length) return;
    // A child run's line names the run it comes from.
    yield page.lines.map((l) => `${formatLogLine({ ...l, message: l.executionId === runId ? l.message : `(${l.taskType} run ${l.executionId}) ${l.message}` })}\n`).join('');
    after = page.nextOffset;
  }
}

/**
 * The run page: header, step graph and table, decision timeline, live log, and run control through
 * the core's `RunControl` / `RunService` with the viewer as requester (door `web`).
 */
export function mountRunRoutes(router: Router, s: Services): void {
  const streams = new RunStreams(s);

  const showRun = async (ctx: Context, viewer: ConsoleIdentity, run: Run, status = 200, problem?: string) =>
    sendHtml(ctx, RunPage({ viewer, data: await runPageData(s, run, viewer), problem }), status);

  /**
   * A control action: done → back to the run page (303); refused by the core → the run page as it
   * now stands, with the core's words and status. Unexpected failures go to the error page.
   */
  const control = async (ctx: Context, viewer: ConsoleIdentity, run: Run, act: () => Promise<string | void>) => {
    let to: string | void;
    try {
      requireEngine(s);
      to = await act();
    } catch (err) {
      if (!(err instanceof AppError) || (err.status >= 500 && err.status !== 503)) throw err;
      return showRun(ctx, viewer, await visibleRunFor(s, run.id, viewer), err.status, err.message);
    }
    redirectTo(ctx, to ?? runUrl(run.id));
  };

  router.get('/console/runs/:id', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(RunParams, ctx.params);
    await showRun(ctx, viewer, await visibleRunFor(s, id, viewer));
  }));

  router.get('/console/runs/:id/events', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(RunParams, ctx.params);
    const offset = parseFields(Offset, { lastEventId: ctx.get('last-event-id') || undefined, after: ctx.query.after });
    const run = await visibleRunFor(s, id, viewer);
    const cookie = ctx.cookies.get(SESSION_COOKIE);
    // The session is read as it is now, as every page reads it: signed out, revoked or moved off the project ends the stream.
    const allowed = async () => {
      const now = cookie ? await s.consoleSessions.resolve(cookie) : undefined;
      return !!now && canAccessProject(now.principal, run.repositoryIdentifier);
    };
    const from = offset.lastEventId ?? offset.after ?? '0';
    await checkLogOffset(s.orm, run.id, from, offset.lastEventId !== undefined ? 'Last-Event-ID' : 'after');
    streams.follow(run.id, from, s.consoleStreams.start(ctx), allowed);
  }));

  router.get('/console/runs/:id/logs.txt', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(RunParams, ctx.params);
    const run = await visibleRunFor(s, id, viewer);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Disposition', `attachment; filename="run-${run.id}.log"`);
    ctx.body = Readable.from(logText(s, run.id));
  }));

  router.post('/console/runs/:id/pause', action(s, async ({ ctx, viewer }) => {
    const run = await visibleRunFor(s, parseFields(RunParams, ctx.params).id, viewer);
    await control(ctx, viewer, run, async () => { await s.control.pause(run, requesterOf(viewer)); });
  }));

  router.post('/console/runs/:id/resume', action(s, async ({ ctx, viewer }) => {
    const run = await visibleRunFor(s, parseFields(RunParams, ctx.params).id, viewer);
    await control(ctx, viewer, run, async () => { await s.control.resume(run, requesterOf(viewer)); });
  }));

  // A retry is a new run: the browser goes to it.
  router.post('/console/runs/:id/retry', action(s, async ({ ctx, viewer }) => {
    const run = await visibleRunFor(s, parseFields(RunParams, ctx.params).id, viewer);
    await control(ctx, viewer, run, async () => runUrl((await s.control.retryRun(run, requesterOf(viewer))).id));
  }));

  // Destructive controls: a GET shows what will happen and a form; only the POST acts.
  const confirm = (what: ConfirmAction) => page(s, async ({ ctx, viewer }) => {
    const params = parseFields(what === 'cancel' ? RunParams : StepParams, ctx.params) as { id: string; ref?: string };
    const run = await visibleRunFor(s, params.id, viewer);
    sendHtml(ctx, ConfirmPage({ viewer, run, action: what, stepRef: params.ref }));
  });

  router.get('/console/runs/:id/cancel', confirm('cancel'));
  router.post('/console/runs/:id/cancel', action(s, async ({ ctx, viewer }) => {
    const run = await visibleRunFor(s, parseFields(RunParams, ctx.params).id, viewer);
    await control(ctx, viewer, run, async () => { await s.runs.cancel(run, requesterOf(viewer)); });
  }));

  router.get('/console/runs/:id/steps/:ref/skip', confirm('skip'));
  router.post('/console/runs/:id/steps/:ref/skip', action(s, async ({ ctx, viewer, form }) => {
    const { id, ref } = parseFields(StepParams, ctx.params);
    const run = await visibleRunFor(s, id, viewer);
    const { reason } = parseFields(SkipForm, form);
    await control(ctx, viewer, run, async () => { await s.control.skipStep(run, ref, reason || null, requesterOf(viewer)); });
  }));

  router.get('/console/runs/:id/steps/:ref/force-complete', confirm('force-complete'));
  router.post('/console/runs/:id/steps/:ref/force-complete', action(s, async ({ ctx, viewer, form }) => {
    const { id, ref } = parseFields(StepParams, ctx.params);
    const run = await visibleRunFor(s, id, viewer);
    const { result } = parseFields(ForceCompleteForm, form);
    await control(ctx, viewer, run, async () => { await s.control.forceCompleteStep(run, ref, result, requesterOf(viewer)); });
  }));

  router.post('/console/runs/:id/steps/:ref/retry', action(s, async ({ ctx, viewer }) => {
    const { id, ref } = parseFields(StepParams, ctx.params);
    const run = await visibleRunFor(s, id, viewer);
    await control(ctx, viewer, run, async () => { await s.control.retryStep(run, ref, requesterOf(viewer)); });
  }));
}
