import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Services } from '../../container.js';
import { AppError } from '../../errors.js';
import { parseFields, readForm } from '../form.js';
import { sendHtml } from '../render.js';
import { action, open, redirectTo } from '../route.js';
import { clearSessionCookie, loginCsrf, requireLoginCsrf, safeNext, setSessionCookie } from '../session.js';
import { ConfirmLinkPage, LoginPage } from '../views/login.js';

const PasswordForm = z.object({ username: z.string().trim().min(1, 'enter your username').max(200), password: z.string().min(1, 'enter your password').max(1000), next: z.string().optional() });
const TokenForm = z.object({ token: z.string().trim().min(1, 'paste a token').max(2000), next: z.string().optional() });
const LinkForm = z.object({ link: z.string().min(1).max(200), next: z.string().optional() });

/** Sign-in and sign-out: an account's password, a pasted API token, or a one-time link from the chat bot. */
export function mountLoginRoutes(router: Router, s: Services): void {
  const loginPage = (ctx: Context, next: unknown, status = 200, problem?: string) =>
    sendHtml(ctx, LoginPage({ csrf: loginCsrf(ctx), next: safeNext(next), passwords: !!s.logins, slack: !!s.config.slack, problem }), status);

  /** Every way in ends the same: a session row, its cookie, and on to where the person was going. */
  const signIn = async (ctx: Context, subject: Parameters<typeof s.consoleSessions.open>[0], door: string, who: string, next: unknown) => {
    const session = await s.consoleSessions.open(subject, { door, ip: ctx.ip, who });
    setSessionCookie(ctx, session.cookie, session.expiresAt);
    redirectTo(ctx, safeNext(next));
  };

  router.get('/console/login', open(s, async (ctx) => {
    if (ctx.state.consoleViewer) return redirectTo(ctx, safeNext(ctx.query.next));
    loginPage(ctx, ctx.query.next);
  }));

  router.post('/console/login/password', open(s, async (ctx) => {
    const raw = await readForm(ctx);
    requireLoginCsrf(ctx, raw._csrf);
    const form = parseFields(PasswordForm, raw);
    if (!s.logins) throw new AppError('not_found', 'Accounts are not enabled on this server (FLOWGATE_JWT_SECRET is not set); sign in with a token');
    let account;
    try {
      account = await s.logins.verify(form.username, form.password, ctx.ip, 'web');
    } catch (err) {
      if (err instanceof AppError && (err.status === 401 || err.status === 429)) {
        return loginPage(ctx, form.next, err.status, err.message);
      }
      throw err;
    }
    await signIn(ctx, { kind: 'account', accountId: account.id }, 'web', account.email ?? `user:${account.username}`, form.next);
  }));

  router.post('/console/login/token', open(s, async (ctx) => {
    const raw = await readForm(ctx);
    requireLoginCsrf(ctx, raw._csrf);
    const form = parseFields(TokenForm, raw);
    let principal;
    try {
      principal = await s.tokens.authenticate(form.token);
    } catch (err) {
      if (!(err instanceof AppError && err.status === 401)) throw err;
    }
    // Only a Flowgate token becomes a console session (an account signs in with its password), and never a run's own token.
    if (!principal || principal.accountId || principal.runId) {
      return loginPage(ctx, form.next, 401, 'That token is unknown, revoked, expired, or not a token a person may sign in with');
    }
    await signIn(ctx, { kind: 'token', tokenId: principal.tokenId }, 'web', principal.email ?? `token:${principal.name}`, form.next);
  }));

  // The link only shows whose it is: scanners and unfurlers fetch it, so only the POST below spends it.
  router.get('/console/login/link/:secret', open(s, async (ctx) => {
    const link = await s.loginLinks.peek(ctx.params.secret);
    if (!link) return loginPage(ctx, ctx.query.next, 410, 'This sign-in link was used already or has expired; ask the bot for a new one with /flowgate login');
    sendHtml(ctx, ConfirmLinkPage({ csrf: loginCsrf(ctx), secret: ctx.params.secret, email: link.email, next: safeNext(ctx.query.next) }));
  }));

  router.post('/console/login/link', open(s, async (ctx) => {
    const raw = await readForm(ctx);
    requireLoginCsrf(ctx, raw._csrf);
    const form = parseFields(LinkForm, raw);
    const spent = await s.loginLinks.consume(form.link);
    if (!spent) return loginPage(ctx, form.next, 410, 'This sign-in link was used already or has expired; ask the bot for a new one with /flowgate login');
    await signIn(ctx, { kind: 'person', email: spent.email }, spent.door, spent.email, form.next);
  }));

  router.post('/console/logout', action(s, async ({ ctx, viewer }) => {
    await s.consoleSessions.end(viewer.sessionId);
    clearSessionCookie(ctx);
    redirectTo(ctx, '/console/login');
  }));
}
