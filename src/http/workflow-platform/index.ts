import type { Services } from '../../container.js';
import type { Dialect, RouteSpec } from '../route.js';
import { approvalRoutes } from './approvals-routes.js';
import { auditRoutes } from './audit-routes.js';
import { platformEnvelope, platformStatus } from './envelope.js';
import { credentialRoutes } from './credentials-routes.js';
import { executionRoutes } from './executions-routes.js';
import { flowRoutes } from './flows-routes.js';
import { kvRoutes } from './kv-routes.js';
import { pluginRoutes } from './plugins-routes.js';
import { triggerRoutes } from './triggers-routes.js';
import { webhookRoutes } from './webhook-routes.js';

/**
 * The workflow platform API (flows, executions, triggers, plugins…) beside Flowgate's own API
 * under `/api/v1`: mounted before it, with its own error codes; unknown paths get that API's 404.
 * (The executions' log WebSocket is answered on the server's `upgrade` event: see log-stream.ts.)
 */
export function workflowPlatformDialect(s: Services): Dialect {
  return { name: 'workflow-platform', prefix: '/api/v1', envelope: platformEnvelope, statusOf: platformStatus, routes: workflowPlatformRoutes(s), fallthrough: false };
}

function workflowPlatformRoutes(s: Services): RouteSpec[] {
  return [...flowRoutes(s), ...pluginRoutes(s), ...executionRoutes(s), ...triggerRoutes(s), ...credentialRoutes(s), ...webhookRoutes(s), ...kvRoutes(s), ...approvalRoutes(s), ...auditRoutes(s)];
}
