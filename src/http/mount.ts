import Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { TokenService } from '../core/identity/tokens.js';
import type { Principal } from '../core/identity/principal.js';
import { AppError, notFound, toAppError } from '../errors.js';
import { authenticate, requireRunScope } from './auth.js';
import { readBody } from './body.js';
import type { Dialect, RouteSpec } from './route.js';
import { validate } from './validate.js';

/** `/a/{id}/b` → `/a/:id/b`; `{*rest}` → `*rest` (several segments). */
export const koaPath = (p: string) => p.replace(/\{\*(\w+)\}/g, '*$1').replace(/\{(\w+)\}/g, ':$1');

/** Sends an error in the dialect's envelope; unexpected errors are logged, never shown. */
export function sendError(ctx: Context, dialect: Dialect, err: unknown, log: Logger): void {
  const appErr = toAppError(err);
  if (!(err instanceof AppError)) log.error({ err, reqId: ctx.state.reqId, route: ctx._matchedRoute }, 'request failed');
  ctx.status = dialect.statusOf?.(appErr) ?? appErr.status;
  ctx.body = dialect.envelope(appErr);
}

function handle(spec: RouteSpec, dialect: Dialect, tokens: TokenService, log: Logger) {
  return async (ctx: Context) => {
    try {
      const principal = spec.roles === 'public' ? (undefined as unknown as Principal) : await authenticate(ctx, tokens, spec.roles);
      if (principal) requireRunScope(principal, spec, ctx.params);
      const params = spec.params ? validate(spec.params, ctx.params, 'path') : ctx.params;
      const query = spec.query ? validate(spec.query, ctx.query, 'query') : ctx.query;
      let body: unknown;
      if (spec.body) {
        const { json } = await readBody(ctx);
        body = validate(spec.body, json ?? {}, 'body');
      }
      const result = await spec.handler({ principal, params, query, body, ctx });
      if (result.headers) for (const [k, v] of Object.entries(result.headers)) ctx.set(k, v);
      ctx.status = result.status ?? 200;
      if (result.body !== undefined) ctx.body = result.body;
    } catch (err) {
      sendError(ctx, dialect, err, log);
    }
  };
}

/** Registers a dialect's routes, in order (static paths are listed before `{id}` catch-alls). */
export function mountDialect(router: Router, dialect: Dialect, tokens: TokenService, log: Logger): void {
  for (const spec of dialect.routes) router[spec.method](dialect.prefix + koaPath(spec.path), handle(spec, dialect, tokens, log));
  if (dialect.fallthrough === false) return;
  const fallthrough = async (ctx: Context) => sendError(ctx, dialect, notFound(`No route ${ctx.method} ${ctx.path}`), log);
  router.all(dialect.prefix, fallthrough);
  router.all(`${dialect.prefix}/*rest`, fallthrough);
}
