import type { Services } from '../../container.js';
import type { Dialect } from '../route.js';
import { apiEnvelope } from './envelope.js';
import { eventRoutes } from './events-routes.js';
import { identityRoutes } from './identities-routes.js';
import { projectRoutes } from './projects-routes.js';
import { projectScheduleRoutes } from './schedules-routes.js';
import { tokenRoutes } from './tokens-routes.js';
import { whoamiRoutes } from './whoami-routes.js';

/** Flowgate's management API: tokens, projects, run events, identities, schedules. */
export function apiDialect(s: Services): Dialect {
  return { name: 'api', prefix: '/api/v1', envelope: apiEnvelope, routes: [...tokenRoutes(s), ...projectRoutes(s), ...eventRoutes(s), ...identityRoutes(s), ...projectScheduleRoutes(s), ...whoamiRoutes()] };
}
