import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Services } from '../container.js';
import type { Door } from '../doors/door.js';
import { SampledWarning } from '../observability/sampled-log.js';
import { accountsDialect } from './accounts/index.js';
import { apiDialect } from './api/index.js';
import { flowRunsDialect } from './flow-runs/index.js';
import { mountConsole } from '../console/index.js';
import { mountDialect } from './mount.js';
import { PrefixRouter } from './prefix-router.js';
import { buildOpenApi } from './openapi.js';
import { mountPlatform } from './platform/routes.js';
import { sfpDialect } from './sfp/index.js';
import { workflowPlatformDialect } from './workflow-platform/index.js';
import { workflowRunsDialect } from './workflow-runs/index.js';

const WEBHOOK_PATH = '/api/v1/webhook/';

const doorOf = (path: string) =>
  path.startsWith('/slack/') ? 'slack' : path.startsWith('/github/') ? 'github' : path.startsWith('/azure-devops/') ? 'azure-devops'
    : path.startsWith(WEBHOOK_PATH) ? 'webhook' : 'rest';

/** The path as logs keep it: a webhook key is a credential (only its digest is stored), so it is masked. */
const loggedPath = (path: string) => (path.startsWith(WEBHOOK_PATH) ? `${WEBHOOK_PATH}***` : path);

const reasonOf = (ctx: Koa.Context) => {
  const body = ctx.body as { message?: unknown; error?: unknown; detail?: unknown } | undefined;
  // `detail` is the flow-runs dialect's (FastAPI's) sentence.
  return body?.message ?? body?.error ?? (typeof body?.detail === 'string' ? body.detail : undefined);
};

async function auditRefusal(s: Services, ctx: Koa.Context): Promise<void> {
  const principal = ctx.state.principal as { name: string; email: string | null } | undefined;
  await s.audit.record(
    { name: principal ? principal.email ?? `token:${principal.name}` : 'anonymous', door: doorOf(ctx.path) },
    'request.refused', 'route', `${ctx.method} ${ctx._matchedRoute ?? ctx.path}`,
    { status: ctx.status, path: loggedPath(ctx.path), ip: ctx.ip, reason: reasonOf(ctx) },
  );
}

/** Builds the HTTP application (it does not listen). */
export function createApp(s: Services, doors: Door[] = []): Koa {
  // Behind a proxy every request would come from the proxy's address: one login throttle for everyone.
  const app = new Koa({ proxy: s.config.trustProxy });
  // A browser leaving a page ends its event stream mid-body: that is how streams end, not a failure.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE') s.log.error({ err }, 'HTTP response failed');
  });
  const unauthenticated = new SampledWarning(s.log, 'unauthenticated requests refused (sampled: one line a minute)');
  // flow-runs and the workflow platform before api: all live under /api/v1, whose fallthrough would answer first.
  const dialects = [sfpDialect(s), flowRunsDialect(s), workflowPlatformDialect(s), apiDialect(s), workflowRunsDialect(s), accountsDialect(s)];
  let openapi: unknown;
  const router = new PrefixRouter();
  mountPlatform(router, s, () => (openapi ??= buildOpenApi(dialects, s.version)));
  for (const d of dialects) mountDialect(router, d, s.tokens, s.log);
  for (const door of doors) door.mount(router);
  mountConsole(router, s);

  app.use(async (ctx, next) => {
    const reqId = ctx.get('x-request-id') || randomUUID();
    ctx.state.reqId = reqId;
    ctx.set('x-request-id', reqId);
    const start = process.hrtime.bigint();
    try {
      await next();
      // A caller without valid credentials (no or a bad token, a bad webhook signature) is counted and
      // sampled in the log: anyone can send those, and a row each would let strangers fill the audit
      // table. Every refusal of a known caller is audited (who, what, through which door).
      if (ctx.status === 401 && !ctx.state.principal) {
        const surface = doorOf(ctx.path);
        s.metrics.unauthenticated.inc({ surface });
        unauthenticated.note({ surface, method: ctx.method, path: loggedPath(ctx.path), ip: ctx.ip, reason: reasonOf(ctx) });
      } else if (ctx.status === 401 || ctx.status === 403) {
        await auditRefusal(s, ctx).catch((err) => s.log.warn({ err }, 'auditing a refused request failed'));
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const routeLabel = ctx._matchedRoute ? String(ctx._matchedRoute) : 'unmatched';
      s.metrics.httpDuration.observe({ method: ctx.method, route: routeLabel, status: String(ctx.status) }, seconds);
      if (ctx.path !== '/healthz' && ctx.path !== '/metrics')
        s.log.info({ reqId, method: ctx.method, path: loggedPath(ctx.path), route: routeLabel, status: ctx.status, ms: Math.round(seconds * 1000) }, 'request');
    }
  });
  app.use(router.routes());
  app.use(async (ctx) => {
    ctx.status = 404;
    ctx.body = { error: `No route ${ctx.method} ${ctx.path}` };
  });
  return app;
}
