import type Router from '@koa/router';
import type { Services } from '../container.js';
import { mountAssets } from './assets.js';
import { mountLoginRoutes } from './routes/login-routes.js';
import { mountInboxRoutes } from './routes/inbox-routes.js';
import { mountRunRoutes } from './routes/run-routes.js';
import { mountRunsRoutes } from './routes/runs-routes.js';
import { mountFlowsRoutes } from './routes/flows-routes.js';

/**
 * The web console under /console: server-rendered pages over the core services (no rule is decided
 * here), htmx for partial updates and one small script for live streams.
 */
export function mountConsole(router: Router, s: Services): void {
  mountAssets(router);
  mountLoginRoutes(router, s);
  mountInboxRoutes(router, s);
  mountRunRoutes(router, s);
  mountRunsRoutes(router, s);
  mountFlowsRoutes(router, s);
}
