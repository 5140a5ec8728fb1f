import { z } from 'zod';
import { actorOf, requireProjectAccess } from '../../core/identity/principal.js';
import { GROUP_NAME } from '../../core/approvals/approver-policy.js';
import { NAMESPACE, presentProject } from '../../core/projects/projects.js';
import type { Services } from '../../container.js';
import { route } from '../route.js';
import { repositoryIdentifier } from '../sfp/schemas.js';
import { READ_ROLES, readRoles } from '../../core/identity/roles.js';

const OWNER = ['owner'] as const;
const params = z.object({ repositoryIdentifier });
const body = z.strictObject({
  provider: z.enum(['github', 'azure-devops']),
  owners: z.array(z.email()).default([]),
  members: z.array(z.email()).default([]),
  slackChannel: z.string().min(1).optional(),
  webhookSecret: z.string().min(16, 'at least 16 characters').optional(),
  /** Azure DevOps work items that start flows: `{byType: {Bug: 'flow'}, byTag: {deploy: 'flow'}}`; replaces the mapping when given. */
  workItemFlows: z.strictObject({
    byType: z.record(z.string().min(1), z.string().min(1)).optional(),
    byTag: z.record(z.string().min(1), z.string().min(1)).optional(),
  }).optional(),
  /** GitHub issues that start flows: `{deploy: 'release'}` (label → flow type); replaces the mapping when given. */
  labelFlows: z.record(z.string().min(1).max(50), z.string().min(1)).optional(),
  /** Named approver groups a flow names as `approvers: group:<name>`: `{security: ['a@acme.io']}`; replaces the groups when given. */
  approverGroups: z.record(z.string().regex(GROUP_NAME, 'letters, digits, _ . - (at most 64)'), z.array(z.email()).max(200)).optional(),
  /** The project's name in the workflow platform API; kept when absent (a new project gets `acme.app` for `acme/app`). */
  namespace: z.string().regex(NAMESPACE, 'lowercase letters, digits, . _ - (at most 63), starting with a letter or digit').optional(),
});

/** `{*repositoryIdentifier}`: `owner/repo` arrives either URL-encoded or as raw path segments. */
export function projectRoutes(s: Services) {
  return [
    route({
      method: 'get', path: '/projects', roles: readRoles(OWNER), summary: 'List projects', responses: { 200: 'Projects' },
      async handler({ principal }) {
        return { body: { projects: (await s.projects.list(principal.projects)).map(presentProject) } };
      },
    }),
    route({
      method: 'get', path: '/namespaces', roles: READ_ROLES, summary: 'The namespaces the token may see, each with its project',
      responses: { 200: '`[{namespace, repositoryIdentifier}]`, by namespace' },
      async handler({ principal }) {
        const projects = await s.projects.list(principal.projects);
        return { body: projects.map((p) => ({ namespace: p.namespace, repositoryIdentifier: p.repositoryIdentifier })).sort((a, b) => a.namespace.localeCompare(b.namespace)) };
      },
    }),
    route({
      method: 'put', path: '/projects/{*repositoryIdentifier}', roles: OWNER, params, body,
      summary: 'Create or replace a project', responses: { 200: 'Updated', 201: 'Created', 400: 'Invalid body' },
      async handler({ principal, params: p, body: b }) {
        requireProjectAccess(principal, p.repositoryIdentifier);
        const { project, created } = await s.projects.upsert(p.repositoryIdentifier, b, actorOf(principal));
        return { status: created ? 201 : 200, body: presentProject(project) };
      },
    }),
    route({
      method: 'get', path: '/projects/{*repositoryIdentifier}', roles: readRoles(OWNER), params,
      summary: 'Get a project', responses: { 200: 'Project', 404: 'Unknown project' },
      async handler({ principal, params: p }) {
        requireProjectAccess(principal, p.repositoryIdentifier);
        return { body: presentProject(await s.projects.get(p.repositoryIdentifier)) };
      },
    }),
    route({
      method: 'delete', path: '/projects/{*repositoryIdentifier}', roles: OWNER, params,
      summary: 'Delete a project', responses: { 204: 'Deleted', 404: 'Unknown project' },
      async handler({ principal, params: p }) {
        requireProjectAccess(principal, p.repositoryIdentifier);
        await s.projects.delete(p.repositoryIdentifier, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
