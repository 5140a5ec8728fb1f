import type { Services } from '../../container.js';
import { actorOf, canAccessProject, type Principal } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import type { TriggerResult } from '../../core/triggers/trigger-service.js';
import type { Trigger } from '../../core/triggers/trigger.js';
import { AppError, invalidContent, notFound, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { flowTargets } from './flow-target.js';
import { EDIT_ROLES } from './roles.js';
import { createTriggerBody, foreignFields, listTriggersQuery, triggerParams, triggerSchema, updateTriggerBody } from './trigger-schemas.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** The public address of a webhook key: FLOWGATE_PUBLIC_URL and the path, or the path alone when it is not set. */
export const webhookUrlOf = (s: Services, key: string) => `${s.config.configuredPublicUrl ?? ''}/api/v1/webhook/${key}`;

/** A trigger as this API shows it; a webhook's key and URL only in the answer that made the key. */
function presentTrigger(s: Services, { trigger: t, webhookKey }: TriggerResult) {
  const head = { id: t.id, flowId: t.flowId, namespace: t.namespace, name: t.name, type: t.type };
  const kind = t.type === 'cron'
    ? { cron: t.cron!, timezone: t.timezone ?? 'UTC' }
    : { webhookKey: webhookKey ?? null, webhookUrl: webhookKey ? webhookUrlOf(s, webhookKey) : null, hasSecret: t.hasSecret, rateLimitPerMinute: t.rateLimitPerMinute! };
  return {
    ...head, ...kind, enabled: t.enabled, inputs: t.inputs, lastFiredAt: iso(t.lastFiredAt),
    ...(t.type === 'cron' ? { nextFireAt: iso(s.triggers.nextFireAt(t)) } : {}),
    createdAt: iso(t.createdAt), updatedAt: iso(t.updatedAt), createdBy: t.createdBy, updatedBy: t.updatedBy,
  };
}

/** Cron and webhook triggers of flows: editors write, every role reads, in the caller's namespaces. */
export function triggerRoutes(s: Services) {
  const { targetOf } = flowTargets(s);
  /** A trigger the caller may see; one of another namespace is answered like a missing one. */
  const visible = async (p: Principal, id: string): Promise<Trigger> => {
    const t = await s.triggers.find(id);
    if (!t || !canAccessProject(p, t.repositoryIdentifier)) throw notFound(`No trigger ${id}`);
    return t;
  };
  const present = (r: TriggerResult) => presentTrigger(s, r);

  return [
    route({
      method: 'get', path: '/triggers', roles: READ_ROLES, query: listTriggersQuery, summary: 'List triggers of the namespaces the caller may see',
      responses: { 200: { description: 'Triggers, oldest first', schema: triggerSchema.array() } },
      async handler({ principal, query }) {
        return { body: (await s.triggers.list({ projects: principal.projects, ...query })).map((trigger) => present({ trigger })) };
      },
    }),
    route({
      method: 'post', path: '/triggers', roles: EDIT_ROLES, body: createTriggerBody,
      summary: 'Create a cron or webhook trigger of a flow',
      description: 'A cron trigger is also the schedule `trigger-<id>`. A webhook trigger\'s `webhookKey` and `webhookUrl` are shown in this answer only (the server keeps its SHA-256).',
      responses: { 201: { description: 'Created', schema: triggerSchema }, 409: 'The webhook key is in use', 422: 'Invalid cron, time zone, inputs template or namespace; unknown flow' },
      async handler({ principal, body, ctx }) {
        const { flowId, type, namespace, ...fields } = body;
        const target = await targetOf(principal, flowId, namespace).catch((err) => {
          if (err instanceof AppError && err.code === 'not_found') throw invalidContent(`unknown flow ${flowId}`, { errors: [{ path: 'flowId', message: `no flow ${flowId} (GET /api/v1/flows)` }] });
          throw err;
        });
        const made = await s.triggers.create(type, target, fields, actorOf(principal));
        ctx.set('Location', `/api/v1/triggers/${made.trigger.id}`);
        return { status: 201, body: present(made) };
      },
    }),
    route({
      method: 'get', path: '/triggers/{id}', roles: READ_ROLES, params: triggerParams, summary: 'Get a trigger',
      responses: { 200: { description: 'The trigger (`webhookKey` and `webhookUrl` null: shown once)', schema: triggerSchema }, 404: 'Unknown trigger' },
      async handler({ principal, params }) {
        return { body: present({ trigger: await visible(principal, params.id) }) };
      },
    }),
    route({
      method: 'put', path: '/triggers/{id}', roles: EDIT_ROLES, params: triggerParams, body: updateTriggerBody,
      summary: 'Change a trigger',
      description: 'Absent fields keep their value; `inputs: null` removes the template, `secret: null` the secret. `type`, `flowId` and `namespace` cannot change. '
        + 'A new `webhookKey` replaces the old one at once and is shown in this answer only.',
      responses: { 200: { description: 'The trigger', schema: triggerSchema }, 404: 'Unknown trigger', 409: 'The webhook key is in use', 422: 'A changed type, flow or namespace; invalid cron, time zone or inputs template' },
      async handler({ principal, params, body }) {
        const t = await visible(principal, params.id);
        const { flowId, type, namespace, ...fields } = body;
        const fixed = [['type', type, t.type], ['flowId', flowId, t.flowId], ['namespace', namespace, t.namespace]].filter(([, given, now]) => given !== undefined && given !== now);
        if (fixed.length) throw invalidContent(`a trigger's ${fixed.map(([k]) => k).join(', ')} cannot change: create another trigger`, { errors: fixed.map(([k, , now]) => ({ path: k!, message: `cannot change (it is ${now})` })) });
        const foreign = foreignFields(t.type).filter((k) => body[k] !== undefined);
        if (foreign.length) throw validationFailed(foreign.map((k) => ({ field: k, message: `not a field of ${t.type} triggers`, location: 'body' as const })));
        return { body: present(await s.triggers.update(t, fields, actorOf(principal))) };
      },
    }),
    route({
      method: 'delete', path: '/triggers/{id}', roles: EDIT_ROLES, params: triggerParams, summary: 'Delete a trigger (its webhook key stops answering, its schedule goes)',
      responses: { 204: 'Deleted', 404: 'Unknown trigger' },
      async handler({ principal, params }) {
        await s.triggers.delete(await visible(principal, params.id), actorOf(principal));
        return { status: 204 };
      },
    }),
    route({
      method: 'post', path: '/triggers/{id}/rotate-key', roles: EDIT_ROLES, params: triggerParams,
      summary: 'Give a webhook trigger a new key; the old one stops working at once',
      responses: { 200: { description: 'The trigger with its new `webhookKey` and `webhookUrl` (shown this once)', schema: triggerSchema }, 404: 'Unknown trigger', 409: 'A cron trigger has no key' },
      async handler({ principal, params }) {
        return { body: present(await s.triggers.rotateKey(await visible(principal, params.id), actorOf(principal))) };
      },
    }),
  ];
}
