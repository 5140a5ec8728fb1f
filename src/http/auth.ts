import type { Context } from 'koa';
import type { TokenService } from '../core/identity/tokens.js';
import type { Principal } from '../core/identity/principal.js';
import { requireRole } from '../core/identity/principal.js';
import type { AccessRole } from '../core/identity/platform-roles.js';
import { AppError, forbidden, unauthenticated } from '../errors.js';
import type { RouteSpec } from './route.js';

/**
 * Resolves the bearer (a Flowgate token or an account's JWT: TokenService tells them apart) to a
 * principal and checks the route's roles. Fails closed.
 */
export async function authenticate(ctx: Context, tokens: TokenService, roles: readonly AccessRole[]): Promise<Principal> {
  const header = ctx.get('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    ctx.set('WWW-Authenticate', 'Bearer');
    throw unauthenticated(header ? 'Malformed Authorization header; expected "Bearer <token>"' : 'Missing bearer token');
  }
  let principal: Principal | undefined;
  try {
    principal = await tokens.authenticate(match[1]);
  } catch (err) {
    if (err instanceof AppError && err.code === 'authentication_required') ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    throw err;
  }
  if (!principal) {
    ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    throw unauthenticated('Invalid or revoked token');
  }
  ctx.state.principal = principal;
  requireRole(principal, roles);
  return principal;
}

/**
 * A per-execution token (principal with `runId`) is refused everywhere except on routes that opt in
 * with `executionToken: true`, and there only for its own run: the route's `{id}` path parameter
 * must be that run's id (not its engine run id). Fails closed: a flagged route without `{id}` refuses it.
 */
export function requireRunScope(principal: Principal, spec: Pick<RouteSpec, 'executionToken'>, params: Record<string, unknown>): void {
  if (!principal.runId) return;
  if (!spec.executionToken) throw forbidden('An execution token may only report on its own run (its status and metadata routes)');
  if (params.id !== principal.runId) throw forbidden(`This execution token is bound to execution ${principal.runId}`);
}
