import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { AppError, toAppError } from '../errors.js';
import { readForm } from './form.js';
import { securityHeaders, sendHtml } from './render.js';
import { requireSameSite, requireViewer, SignInRequired, viewerOf } from './session.js';
import { ErrorPage } from './views/error.js';

export interface ConsoleRequest {
  ctx: Context;
  viewer: ConsoleIdentity;
  /** The posted form (POST routes); its CSRF token was checked. */
  form: Record<string, string | string[]>;
}

/** Renders any failure as a page in the console's words; unexpected ones are logged, never shown. */
async function sendFailure(ctx: Context, s: Services, err: unknown): Promise<void> {
  if (err instanceof SignInRequired) {
    const next = ctx.method === 'GET' ? ctx.originalUrl : '/console';
    const to = `/console/login?next=${encodeURIComponent(next)}`;
    if (ctx.get('HX-Request') === 'true') {
      ctx.status = 401;
      ctx.set('HX-Redirect', to);
      ctx.body = '';
      return;
    }
    if (ctx.method === 'GET') {
      ctx.status = 303;
      ctx.redirect(to);
      return;
    }
  }
  const e = toAppError(err);
  if (!(err instanceof AppError)) s.log.error({ err, reqId: ctx.state.reqId, route: ctx._matchedRoute }, 'console request failed');
  const viewer = (ctx.state.consoleViewer ?? undefined) as ConsoleIdentity | undefined;
  sendHtml(ctx, ErrorPage({ status: e.status, message: e.status >= 500 ? 'Something went wrong on our side; it was logged.' : e.message, viewer, fields: e.details }), e.status);
  if (e.status === 429) ctx.set('Retry-After', '60');
}

type Handler = (r: ConsoleRequest) => Promise<void>;

/** A page for signed-in people (GET). */
export function page(s: Services, handler: Handler) {
  return async (ctx: Context) => {
    securityHeaders(ctx);
    try {
      await handler({ ctx, viewer: await requireViewer(ctx, s), form: {} });
    } catch (err) {
      await sendFailure(ctx, s, err);
    }
  };
}

/** A form post of a signed-in person: same-site and CSRF-checked before anything else. */
export function action(s: Services, handler: Handler) {
  return async (ctx: Context) => {
    securityHeaders(ctx);
    try {
      const viewer = await requireViewer(ctx, s);
      const form = await readForm(ctx);
      requireSameSite(ctx, viewer.csrf, form._csrf);
      await handler({ ctx, viewer, form });
    } catch (err) {
      await sendFailure(ctx, s, err);
    }
  };
}

/** A route open to everyone (the sign-in pages); the viewer is read if there is one. */
export function open(s: Services, handler: (ctx: Context) => Promise<void>) {
  return async (ctx: Context) => {
    securityHeaders(ctx);
    try {
      await viewerOf(ctx, s);
      await handler(ctx);
    } catch (err) {
      await sendFailure(ctx, s, err);
    }
  };
}

/** After a plain form post: back to a page (POST-redirect-GET); htmx follows `HX-Redirect` instead. */
export function redirectTo(ctx: Context, to: string): void {
  if (ctx.get('HX-Request') === 'true') {
    ctx.status = 204;
    ctx.set('HX-Redirect', to);
    return;
  }
  ctx.status = 303;
  ctx.redirect(to);
}

export type ConsoleRouter = Router;
