import type { Services } from '../../container.js';
import type { Dialect } from '../route.js';
import { approveRoutes } from './approve-routes.js';
import { controlRoutes } from './control-routes.js';
import { workflowRunsEnvelope, workflowRunsStatus } from './envelope.js';
import { workflowRunRoutes } from './runs-routes.js';

/** The workflow-runs API: listing and reading runs, run control, and approving approval steps. */
export function workflowRunsDialect(s: Services): Dialect {
  return {
    name: 'workflow-runs',
    prefix: '/v1/workflow-runs',
    envelope: workflowRunsEnvelope,
    statusOf: workflowRunsStatus,
    routes: [...workflowRunRoutes(s), ...controlRoutes(s), ...approveRoutes(s)],
  };
}
