import type Router from '@koa/router';
import type { Services } from '../../container.js';
import { withTimeout } from '../../util/with-timeout.js';

/** Health, readiness, metrics and the OpenAPI document: no token needed. */
export function mountPlatform(router: Router, s: Services, openapi: () => unknown): void {
  router.get('/healthz', (ctx) => { ctx.body = { status: 'ok' }; });
  router.get('/readyz', async (ctx) => {
    const [database, engine] = await Promise.all([
      withTimeout(s.orm.em.getConnection().execute('select 1'), 2_000, 'checking the database').then(() => true, () => false),
      s.engine.isReady(),
    ]);
    // Draining (a graceful stop began): the checks may still pass, but new work belongs elsewhere.
    const { draining } = s.lifecycle;
    const ready = database && engine && !draining;
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks: { database: database ? 'ok' : 'failing', engine: engine ? 'ok' : 'failing' }, ...(draining ? { draining: true } : {}) };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = s.metrics.registry.contentType;
    ctx.body = await s.metrics.registry.metrics();
  });
  router.get('/openapi.json', (ctx) => { ctx.body = openapi(); });
}
