import type { Services } from '../../container.js';
import type { RouteSpec } from '../route.js';
import { pluginRoutes } from './plugins-routes.js';

/**
 * The workflow platform API's routes (flows, executions, triggers, plugins…). They share `/api/v1`
 * and its error envelope with Flowgate's own API, so they are mounted as part of that dialect.
 */
export function workflowPlatformRoutes(s: Services): RouteSpec[] {
  return [...pluginRoutes(s)];
}
