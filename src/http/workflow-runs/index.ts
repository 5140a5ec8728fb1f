import type { Services } from '../../container.js';
import type { Dialect } from '../route.js';
import { approveRoutes } from './approve-routes.js';
import { workflowRunsEnvelope, workflowRunsStatus } from './envelope.js';
import { workflowRunRoutes } from './runs-routes.js';

/** The workflow-runs API: listing, reading, cancelling runs and approving their approval steps. */
export function workflowRunsDialect(s: Services): Dialect {
  return {
    name: 'workflow-runs',
    prefix: '/v1/workflow-runs',
    envelope: workflowRunsEnvelope,
    statusOf: workflowRunsStatus,
    routes: [...workflowRunRoutes(s), ...approveRoutes(s)],
  };
}
