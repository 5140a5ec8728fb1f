import { z } from 'zod';
import type { Services } from '../../container.js';
import { auditEventExists, searchAudit, type AuditRow } from '../../core/audit/audit-search.js';
import { isUnscopedOwner } from '../../core/identity/principal.js';
import { forbidden, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { count, since, storable } from './schemas.js';

const ADMIN = ['owner'] as const;

const auditQuery = z.strictObject({
  limit: count(1, 1_000, 100),
  since: since.optional(),
  actor: storable.min(1).max(320).optional(),
  action: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?$/, 'an action (flow.created) or a family (flow.*)')
    .transform((a) => (a.endsWith('.*') ? { prefix: a.slice(0, -1) } : { exact: a })).optional(),
  resource: z.string().max(600).regex(/^[a-z][a-z0-9_-]*(\/.+)?$/, 'a resource type (flow) or type/id (flow/<id>)')
    .transform((r) => {
      const cut = r.indexOf('/');
      return cut < 0 ? { type: r } : { type: r.slice(0, cut), id: r.slice(cut + 1) };
    }).optional(),
  before: z.uuid('an audit event id (the last one of the previous page)').optional(),
});

const eventSchema = z.object({
  id: z.string(), timestamp: z.string(), actor: z.string(), door: z.string(), action: z.string(),
  resourceType: z.string(), resourceId: z.string(), details: z.record(z.string(), z.unknown()),
});

const present = (r: AuditRow) => ({
  id: r.id, timestamp: new Date(r.at).toISOString(), actor: r.actor, door: r.door, action: r.action,
  resourceType: r.target_type, resourceId: r.target_id, details: r.details ?? {},
});

/** The audit trail of every dialect and door: one table, read by unscoped admins only (it spans all namespaces). */
export function auditRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/audit', roles: ADMIN, query: auditQuery,
      summary: 'Audit events, newest first',
      description: '`action` is exact or a family (`flow.*`); `resource` is a type (`flow`) or `type/id`; `since` is RFC 3339 or a duration ago (`30m`, `24h`, `7d`); '
        + 'page with `before=<the last id of the previous page>`. Never a secret, password, key or value.',
      responses: { 200: { description: 'Events', schema: eventSchema.array() }, 403: 'Not an unscoped admin' },
      async handler({ principal, query }) {
        if (!isUnscopedOwner(principal)) throw forbidden('The audit trail is for admins of every namespace');
        if (query.before !== undefined && !(await auditEventExists(s.orm, query.before)))
          throw validationFailed([{ field: 'before', message: `no audit event ${query.before} (take the id of the last event of the previous page)`, location: 'query' }]);
        const rows = await searchAudit(s.orm, {
          limit: query.limit, since: query.since, actor: query.actor, action: query.action,
          targetType: query.resource?.type, targetId: query.resource?.id, before: query.before,
        });
        return { body: rows.map(present) };
      },
    }),
  ];
}
