import type { Context } from 'koa';
import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';

/**
 * Clickjacking an approve button is the threat a console adds, so nothing may frame it, and
 * scripts, styles and form targets are this origin's own (htmx is told not to eval, see layout).
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

export function securityHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'same-origin');
  ctx.set('X-Frame-Options', 'DENY');
}

/** Whether htmx asked for a fragment (the same route renders the whole page otherwise). */
export const wantsFragment = (ctx: Context) => ctx.get('HX-Request') === 'true' && ctx.get('HX-Boosted') !== 'true';

/** Sends a page or a fragment; pages are never cached (they show who is signed in and what they may do). */
export function sendHtml(ctx: Context, node: VNode, status = 200, fragment = false): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Vary', 'HX-Request');
  ctx.body = (fragment ? '' : '<!doctype html>') + renderToString(node);
}
