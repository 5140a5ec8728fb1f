import type { Context } from 'koa';
import type { TokenService } from '../core/identity/tokens.js';
import type { Principal } from '../core/identity/principal.js';
import { requireRole } from '../core/identity/principal.js';
import type { Role } from '../db/entities/api-token.js';
import { unauthenticated } from '../errors.js';

/** Resolves the bearer token to a principal and checks the route's roles. Fails closed. */
export async function authenticate(ctx: Context, tokens: TokenService, roles: readonly Role[]): Promise<Principal> {
  const header = ctx.get('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    ctx.set('WWW-Authenticate', 'Bearer');
    throw unauthenticated(header ? 'Malformed Authorization header; expected "Bearer <token>"' : 'Missing bearer token');
  }
  const principal = await tokens.authenticate(match[1]);
  if (!principal) {
    ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    throw unauthenticated('Invalid or revoked token');
  }
  requireRole(principal, roles);
  return principal;
}
