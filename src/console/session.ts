import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { AppError } from '../errors.js';

export const SESSION_COOKIE = 'fg_session';
/** Forms shown before sign-in carry this cookie's value (double submit): no one else's page can sign you in as them. */
const LOGIN_CSRF_COOKIE = 'fg_login_csrf';

/** Signed out (or the session ended): pages send the browser to sign in. */
export class SignInRequired extends AppError {
  constructor() {
    super('authentication_required', 'Sign in to use the console');
  }
}

const cookieOptions = (ctx: Context, expires?: Date) => ({
  httpOnly: true, sameSite: 'lax' as const, secure: ctx.secure, path: '/console', overwrite: true, ...(expires ? { expires } : {}),
});

export function setSessionCookie(ctx: Context, cookie: string, expires: Date): void {
  ctx.cookies.set(SESSION_COOKIE, cookie, cookieOptions(ctx, expires));
}

export function clearSessionCookie(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, '', { ...cookieOptions(ctx), expires: new Date(0) });
}

/** Who is signed in, read once per request. */
export async function viewerOf(ctx: Context, s: Services): Promise<ConsoleIdentity | undefined> {
  if (ctx.state.consoleViewer !== undefined) return ctx.state.consoleViewer ?? undefined;
  const cookie = ctx.cookies.get(SESSION_COOKIE);
  const viewer = cookie ? await s.consoleSessions.resolve(cookie) : undefined;
  ctx.state.consoleViewer = viewer ?? null;
  if (viewer) ctx.state.principal = viewer.principal;
  return viewer;
}

export async function requireViewer(ctx: Context, s: Services): Promise<ConsoleIdentity> {
  const viewer = await viewerOf(ctx, s);
  if (!viewer) throw new SignInRequired();
  return viewer;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * A state-changing request must come from this site: its Origin (when the browser sends one) is
 * ours, and it carries the session's CSRF token (form field `_csrf` or the `X-CSRF-Token` header
 * htmx sends). Fails closed.
 */
export function requireSameSite(ctx: Context, expected: string, sent: unknown): void {
  const origin = ctx.get('origin');
  // Koa 3's ctx.origin is the Origin header itself: compare with the address this request came to.
  if (origin && origin !== `${ctx.protocol}://${ctx.host}`) throw new AppError('forbidden', `This form was sent from ${origin}, not from this console`);
  const token = typeof sent === 'string' && sent ? sent : ctx.get('x-csrf-token');
  if (!token || !same(token, expected)) throw new AppError('forbidden', 'The form has no valid CSRF token (it is stale or came from another site); reload the page and try again');
}

/** The double-submit token for forms shown before sign-in: set once per browser. */
export function loginCsrf(ctx: Context): string {
  let token = ctx.cookies.get(LOGIN_CSRF_COOKIE);
  if (!token || !/^[A-Za-z0-9_-]{32}$/.test(token)) {
    token = randomBytes(24).toString('base64url');
    ctx.cookies.set(LOGIN_CSRF_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure: ctx.secure, path: '/console', overwrite: true });
  }
  return token;
}

export function requireLoginCsrf(ctx: Context, sent: unknown): void {
  const cookie = ctx.cookies.get(LOGIN_CSRF_COOKIE);
  if (!cookie) throw new AppError('forbidden', 'The sign-in form has no CSRF cookie (cookies blocked, or the form came from another site); reload the page');
  requireSameSite(ctx, cookie, sent);
}

/** Where to go after signing in: only a path of the console itself, never another site. */
export const safeNext = (next: unknown) => (typeof next === 'string' && /^\/console(\/[\w\-./?=&%]*)?$/.test(next) && !next.includes('//') ? next : '/console');
