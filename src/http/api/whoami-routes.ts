import { READ_ROLES } from '../../core/identity/roles.js';
import { route } from '../route.js';

/**
 * Who the calling token is. Clients that act for a person (the CLI's approve and reject) need the
 * token's email, which the approval routes require in the body; the secret alone does not say it.
 */
export function whoamiRoutes() {
  return [
    route({
      method: 'get', path: '/whoami', roles: READ_ROLES,
      summary: 'The calling token: id, name, role, email and projects (never its secret)',
      responses: { 200: 'The calling token', 401: 'Missing or invalid token' },
      async handler({ principal: p }) {
        return { body: { id: p.tokenId, name: p.name, role: p.role, email: p.email, projects: p.projects } };
      },
    }),
  ];
}
