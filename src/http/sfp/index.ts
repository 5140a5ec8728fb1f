import type { Services } from '../../container.js';
import type { Dialect } from '../route.js';
import { approvalRoutes } from './approvals-routes.js';
import { cicdRoutes } from './cicd-routes.js';
import { sfpEnvelope } from './envelope.js';
import { internalRoutes } from './internal-routes.js';
import { logRoutes } from './logs-routes.js';
import { scheduleRoutes } from './schedules-routes.js';
import { runByIdRoutes, runRoutes } from './runs-routes.js';
import { typeRoutes } from './types-routes.js';

/** The sfp Flows API. Static paths (`/runs`, `/types`, ...) come before the `/{id}` routes. */
export function sfpDialect(s: Services): Dialect {
  return {
    name: 'sfp',
    prefix: '/sfp/api/flows',
    envelope: sfpEnvelope,
    routes: [...runRoutes(s), ...typeRoutes(s), ...approvalRoutes(s), ...cicdRoutes(s), ...scheduleRoutes(s), ...internalRoutes(s), ...logRoutes(s), ...runByIdRoutes(s)],
  };
}
