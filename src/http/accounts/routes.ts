import type { Context } from 'koa';
import type { Services } from '../../container.js';
import type { AccountService } from '../../core/identity/accounts.js';
import { presentAccount } from '../../core/identity/accounts.js';
import type { LoginService } from '../../core/identity/login.js';
import { PLATFORM_ROLES } from '../../core/identity/platform-roles.js';
import { actorOf, type Principal } from '../../core/identity/principal.js';
import { forbidden, unauthenticated, validationFailed } from '../../errors.js';
import { authenticate } from '../auth.js';
import { readBody } from '../body.js';
import { route } from '../route.js';
import { validate } from '../validate.js';
import { accountSchema, loginBody, loginSchema, registerBody, updateBody, userParams } from './schemas.js';

const FIRST_ADMIN = 'Registering an account needs an admin: send "Authorization: Bearer <token>" with an admin account\'s JWT, or, for the first admin, '
  + 'a Flowgate owner token (FLOWGATE_ADMIN_TOKEN, the token printed at first start, or one made with `flowgate token create --role owner`). Registration is never open';

/** Only accounts log out and have a "me"; a Flowgate token is not an account. */
function accountOf(p: Principal): { accountId: string; sessionId: string } {
  if (!p.accountId) throw forbidden(`Token "${p.name}" is a Flowgate token, not an account: log in at POST /auth/login`);
  return { accountId: p.accountId, sessionId: p.tokenId };
}

export function accountRoutes(s: Services, accounts: AccountService, logins: LoginService) {
  return [
    route({
      method: 'post', path: '/login', roles: 'public', body: loginBody, summary: 'Log in: a JWT for `Authorization: Bearer`',
      description: 'A wrong name, wrong password or disabled account are one answer (401). 5 failures per username in 15 minutes, or 20 per address, are 429 with `Retry-After` until the window ends.',
      responses: { 200: { description: 'The token and its account', schema: loginSchema }, 401: 'invalid username or password', 429: 'Too many failed logins (`Retry-After`)' },
      async handler({ body, ctx }) {
        try {
          return { body: await logins.login(body.username, body.password, ctx.ip) };
        } catch (err) {
          const retryAfter = (err as { retryAfter?: number }).retryAfter;
          if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
          throw err;
        }
      },
    }),
    route({
      // Authenticated here, not by the route's roles, so a request without a token hears how the first admin is made.
      method: 'post', path: '/register', roles: 'public', summary: 'Register an account (admins only: an admin account, or a Flowgate owner token for the first one)',
      description: '`{username, password, role?, email?, namespaces?}`: role at most the caller\'s (default viewer), namespaces within the caller\'s (null: all). Passwords 12–256 characters, not the username.',
      responses: { 201: { description: 'The account', schema: accountSchema }, 401: FIRST_ADMIN, 403: 'Not an admin, or beyond its role or namespaces', 409: 'Username or email taken', 422: 'Unknown namespace' },
      async handler({ ctx }) {
        const issuer = await registrar(ctx, s);
        const { json } = await readBody(ctx);
        const account = await accounts.register(issuer, validate(registerBody, json ?? {}, 'body'));
        return { status: 201, headers: { Location: `/auth/users/${account.username}` }, body: presentAccount(account) };
      },
    }),
    route({
      method: 'get', path: '/me', roles: PLATFORM_ROLES, summary: 'The caller\'s account',
      responses: { 200: { description: 'The account', schema: accountSchema }, 403: 'A Flowgate token, not an account' },
      async handler({ principal }) {
        const account = await accounts.findById(accountOf(principal).accountId);
        if (!account) throw unauthenticated('Invalid or revoked token');
        return { body: presentAccount(account) };
      },
    }),
    route({
      method: 'post', path: '/logout', roles: PLATFORM_ROLES, summary: 'Log out: the token stops working',
      responses: { 204: 'Session ended', 403: 'A Flowgate token, not an account' },
      async handler({ principal }) {
        const { sessionId, accountId } = accountOf(principal);
        await accounts.sessions.revoke(sessionId);
        await s.audit.record(actorOf(principal), 'auth.logout', 'user', accountId, { username: principal.name });
        return { status: 204 };
      },
    }),
    route({
      method: 'get', path: '/users', roles: ['admin'], summary: 'Every account (a scoped admin: those within its namespaces)',
      responses: { 200: { description: 'Accounts, by username', schema: accountSchema.array() } },
      async handler({ principal }) {
        return { body: (await accounts.list(principal)).map(presentAccount) };
      },
    }),
    route({
      method: 'patch', path: '/users/{username}', roles: ['admin'], params: userParams, body: updateBody,
      summary: 'Change an account', description: 'A password, role or namespace change, or disabling, ends all its sessions. The last unscoped admin stays one (409).',
      responses: { 200: { description: 'The account', schema: accountSchema }, 403: 'Beyond the caller\'s role or namespaces', 409: 'Last unscoped admin, or email taken', 422: 'Unknown namespace' },
      async handler({ principal, params, body }) {
        if (body.password !== undefined && body.password.toLowerCase() === params.username) throw validationFailed([{ field: 'password', message: 'must not be the username', location: 'body' }]);
        return { body: presentAccount(await accounts.update(principal, params.username, body)) };
      },
    }),
    route({
      method: 'delete', path: '/users/{username}', roles: ['admin'], params: userParams, summary: 'Delete an account (its sessions end)',
      responses: { 204: 'Deleted', 409: 'The last unscoped admin' },
      async handler({ principal, params }) {
        await accounts.delete(principal, params.username);
        return { status: 204 };
      },
    }),
  ];
}

/** The caller of a registration: an admin (account or owner token); without a token, how to make the first. */
async function registrar(ctx: Context, s: Services): Promise<Principal> {
  if (!ctx.get('authorization')) {
    ctx.set('WWW-Authenticate', 'Bearer');
    throw unauthenticated(FIRST_ADMIN);
  }
  return authenticate(ctx, s.tokens, ['admin']);
}
