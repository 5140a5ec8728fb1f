import type { Services } from '../../container.js';
import { AppError } from '../../errors.js';
import type { Dialect, RouteSpec } from '../route.js';
import { platformEnvelope, platformStatus } from '../workflow-platform/envelope.js';
import { accountRoutes } from './routes.js';

/**
 * Accounts and their sessions under `/auth`, with the workflow platform's errors. Without
 * FLOWGATE_JWT_SECRET every path there answers 503 naming it: there is no anonymous mode.
 */
export function accountsDialect(s: Services): Dialect {
  const routes = s.accounts && s.logins ? accountRoutes(s, s.accounts, s.logins) : unavailable();
  return { name: 'auth', prefix: '/auth', envelope: platformEnvelope, statusOf: platformStatus, routes };
}

function unavailable(): RouteSpec[] {
  return (['get', 'post', 'patch', 'delete'] as const).map((method) => ({
    method, path: '/{*rest}', roles: 'public', summary: 'Accounts are off (FLOWGATE_JWT_SECRET is not set)', responses: { 503: 'FLOWGATE_JWT_SECRET is not set' },
    async handler() {
      throw new AppError('service_unavailable', 'Accounts are off: set FLOWGATE_JWT_SECRET (at least 32 bytes) to use /auth');
    },
  }));
}
