import { notFound } from '../../errors.js';
import { actorOf, requireProjectAccess } from '../../core/identity/principal.js';
import type { FlowDefinition } from '../../core/registry/manifest-schema.js';
import type { Services } from '../../container.js';
import { route } from '../route.js';
import { overrideBody, projectQuery, toggleBody, typeParams } from './schemas.js';
import { READ_ROLES } from '../../core/identity/roles.js';

const ADMIN = ['owner', 'application'] as const;

export const presentFlowType = (d: FlowDefinition) => ({
  id: d.id,
  name: d.name,
  description: d.description,
  category: d.category,
  executionMode: d.executionMode,
  parameters: d.parameters.map((p) => ({
    name: p.name, description: p.description, type: p.type, required: p.required,
    ...(p.default !== undefined ? { default: p.default } : {}), ...(p.enum ? { enum: p.enum } : {}),
  })),
});

export function typeRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/types', roles: READ_ROLES, summary: 'List available flow types',
      responses: { 200: 'List of available flow types' },
      async handler({ principal }) {
        const taskTypes = s.registry.listFor(principal.projects).map(presentFlowType);
        return { body: { taskTypes, count: taskTypes.length } };
      },
    }),
    route({
      method: 'get', path: '/types/status', roles: READ_ROLES, query: projectQuery,
      summary: 'Get flow types with enabled/disabled status for a project',
      responses: { 200: 'Flow types with status', 404: 'Project not found' },
      async handler({ principal, query }) {
        requireProjectAccess(principal, query.repositoryIdentifier);
        const project = await s.projects.get(query.repositoryIdentifier);
        const disabled = new Set(project.settings.disabledFlowTypes ?? []);
        const flowTypes = s.registry.listFor([project.repositoryIdentifier]).map((d) => ({
          id: d.id, name: d.name, enabled: !disabled.has(d.id),
          ...(project.settings.overrides?.[d.id] ? { overrideFlowTypeId: project.settings.overrides[d.id] } : {}),
        }));
        return { body: { flowTypes, repositoryIdentifier: project.repositoryIdentifier } };
      },
    }),
    route({
      method: 'get', path: '/types/{taskTypeId}', roles: READ_ROLES, params: typeParams,
      summary: 'Get flow type information',
      responses: { 200: 'Flow type information', 404: 'Flow type not found' },
      async handler({ principal, params }) {
        const def = s.registry.listFor(principal.projects).find((d) => d.id === params.taskTypeId);
        if (!def) throw notFound(`Flow type "${params.taskTypeId}" not found`);
        return { body: presentFlowType(def) };
      },
    }),
    ...(['enable', 'disable'] as const).map((verb) => route({
      method: 'post', path: `/types/{taskTypeId}/${verb}`, roles: ADMIN, params: typeParams, body: toggleBody,
      summary: `${verb === 'enable' ? 'Enable' : 'Disable'} a flow type for a project`,
      responses: { 200: `Flow type ${verb}d`, 403: 'Forbidden - Requires role: owner, application', 404: 'Project not found' },
      async handler({ principal, params, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        s.registry.get(params.taskTypeId);
        const project = await s.projects.setEnabled(body.repositoryIdentifier, params.taskTypeId, verb === 'enable', actorOf(principal));
        return { body: { id: params.taskTypeId, repositoryIdentifier: project.repositoryIdentifier, enabled: verb === 'enable' } };
      },
    })),
    route({
      method: 'post', path: '/types/{taskTypeId}/override', roles: ADMIN, params: typeParams, body: overrideBody,
      summary: 'Set a flow type override for a project',
      responses: { 200: 'Flow override set', 403: 'Forbidden - Requires role: owner, application', 404: 'Project not found' },
      async handler({ principal, params, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        s.registry.get(params.taskTypeId);
        await s.projects.setOverride(body.repositoryIdentifier, params.taskTypeId, body.overrideFlowTypeId, actorOf(principal));
        return { body: { id: params.taskTypeId, repositoryIdentifier: body.repositoryIdentifier, overrideFlowTypeId: body.overrideFlowTypeId } };
      },
    }),
    route({
      method: 'delete', path: '/types/{taskTypeId}/override', roles: ADMIN, params: typeParams, body: toggleBody,
      summary: 'Remove a flow type override for a project',
      responses: { 200: 'Flow override removed', 403: 'Forbidden - Requires role: owner, application', 404: 'Project not found' },
      async handler({ principal, params, body }) {
        requireProjectAccess(principal, body.repositoryIdentifier);
        s.registry.get(params.taskTypeId);
        await s.projects.removeOverride(body.repositoryIdentifier, params.taskTypeId, actorOf(principal));
        return { body: { id: params.taskTypeId, repositoryIdentifier: body.repositoryIdentifier, overrideFlowTypeId: null } };
      },
    }),
  ];
}
