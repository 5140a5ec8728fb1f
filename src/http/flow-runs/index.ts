import type { Services } from '../../container.js';
import type { Dialect } from '../route.js';
import { flowRunsEnvelope, flowRunsStatus } from './envelope.js';
import { flowRunRoutes } from './runs-routes.js';

/** The flow-runs API: Flowgate's runs as self-service action run records, with FastAPI's cursor pages and errors. */
export function flowRunsDialect(s: Services): Dialect {
  return {
    name: 'flow-runs',
    prefix: '/api/v1/flow-runs',
    envelope: flowRunsEnvelope,
    statusOf: flowRunsStatus,
    routes: flowRunRoutes(s),
  };
}
