import type { Services } from '../../container.js';
import { storageOff } from '../../core/credentials/credential-service.js';
import type { Credential } from '../../core/credentials/credential-store.js';
import { isUuid } from '../../core/ids.js';
import { actorOf, canAccessProject, isUnscopedOwner, type Principal } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { forbidden, invalidContent, notFound } from '../../errors.js';
import { route } from '../route.js';
import { createCredentialBody, credentialParams, credentialSchema, listCredentialsQuery, updateCredentialBody } from './credential-schemas.js';
import { flowTargets } from './flow-target.js';
import { EDIT_ROLES } from './roles.js';

const presentCredential = (c: Credential) => ({
  id: c.id, name: c.name, namespace: c.namespace, type: c.type, description: c.description,
  createdAt: c.createdAt.toISOString(), updatedAt: c.updatedAt.toISOString(), createdBy: c.createdBy, updatedBy: c.updatedBy,
});

const GLOBAL_RULE = 'global credentials (no namespace) are written by an admin: an owner token of every project';

/**
 * Credentials of flows (`${NAME}` in a flow document, `{{ credentials.NAME }}` in a manifest):
 * editors write their namespaces', admins the global ones; every role reads the metadata. The
 * value goes in and never comes out.
 */
export function credentialRoutes(s: Services) {
  const { projectOfNamespace } = flowTargets(s);
  /** Without FLOWGATE_ENCRYPTION_KEY every route answers 503, naming the setting. */
  const storageOn = () => {
    if (!s.credentials.enabled) throw storageOff();
  };
  /** A credential the caller may see (globals: everyone); another namespace's is answered like a missing one. */
  const visible = async (p: Principal, id: string): Promise<Credential> => {
    storageOn();
    const c = isUuid(id) ? await s.credentials.find(id) : null;
    if (!c || (c.repositoryIdentifier !== null && !canAccessProject(p, c.repositoryIdentifier))) throw notFound(`No credential ${id}`);
    return c;
  };
  const writable = (p: Principal, c: Credential) => {
    if (c.repositoryIdentifier === null && !isUnscopedOwner(p)) throw forbidden(`${c.name} is a global credential: ${GLOBAL_RULE}`);
  };

  return [
    route({
      method: 'get', path: '/credentials', roles: READ_ROLES, query: listCredentialsQuery,
      summary: 'List credentials (metadata only): the global ones and those of the namespaces the caller may see',
      description: '`namespace` lists that namespace\'s only. Values are never shown.',
      responses: { 200: { description: 'Credentials, globals first, by name', schema: credentialSchema.array() }, 404: 'Unknown namespace', 503: 'FLOWGATE_ENCRYPTION_KEY is not set' },
      async handler({ principal, query }) {
        storageOn();
        let project: string | undefined;
        if (query.namespace !== undefined) {
          const found = await s.projects.byNamespace(query.namespace);
          if (!found || !canAccessProject(principal, found.repositoryIdentifier)) throw notFound(`No namespace ${query.namespace}`);
          project = found.repositoryIdentifier;
        }
        return { body: (await s.credentials.list({ projects: principal.projects, project })).map(presentCredential) };
      },
    }),
    route({
      method: 'post', path: '/credentials', roles: EDIT_ROLES, body: createCredentialBody,
      summary: 'Store a credential (write-only: its value is never returned)',
      description: 'No `namespace`: a global credential (admins only). A name set by `FLOWGATE_CREDENTIAL_<NAME>` or by a global credential is reserved.',
      responses: { 201: { description: 'Created', schema: credentialSchema }, 403: 'A global credential without admin rights', 409: 'The name is taken or reserved', 422: 'Unknown namespace', 503: 'FLOWGATE_ENCRYPTION_KEY is not set' },
      async handler({ principal, body, ctx }) {
        const { namespace, ...fields } = body;
        storageOn();
        let project = null;
        if (namespace === undefined) {
          if (!isUnscopedOwner(principal)) throw forbidden(`No namespace given: ${GLOBAL_RULE}`);
        } else {
          project = await projectOfNamespace(principal, namespace);
        }
        const made = await s.credentials.create({ ...fields, project }, actorOf(principal));
        ctx.set('Location', `/api/v1/credentials/${made.id}`);
        return { status: 201, body: presentCredential(made) };
      },
    }),
    route({
      method: 'get', path: '/credentials/{id}', roles: READ_ROLES, params: credentialParams, summary: 'Get a credential\'s metadata',
      responses: { 200: { description: 'The credential (never its value)', schema: credentialSchema }, 404: 'Unknown credential', 503: 'FLOWGATE_ENCRYPTION_KEY is not set' },
      async handler({ principal, params }) {
        return { body: presentCredential(await visible(principal, params.id)) };
      },
    }),
    route({
      method: 'put', path: '/credentials/{id}', roles: EDIT_ROLES, params: credentialParams, body: updateCredentialBody,
      summary: 'Change a credential\'s value, type or description',
      description: 'Absent fields keep their value (no `value`: the stored one stays). `name` and `namespace` cannot change.',
      responses: { 200: { description: 'The credential', schema: credentialSchema }, 403: 'A global credential without admin rights', 404: 'Unknown credential', 422: 'A changed name or namespace', 503: 'FLOWGATE_ENCRYPTION_KEY is not set' },
      async handler({ principal, params, body }) {
        const c = await visible(principal, params.id);
        const { name, namespace, ...change } = body;
        const fixed = [['name', name, c.name], ['namespace', namespace, c.namespace]].filter(([, given, now]) => given !== undefined && given !== now);
        if (fixed.length) throw invalidContent(`a credential's ${fixed.map(([k]) => k).join(', ')} cannot change: create another credential`, { errors: fixed.map(([k, , now]) => ({ path: k!, message: `cannot change (it is ${now ?? 'global'})` })) });
        writable(principal, c);
        return { body: presentCredential(await s.credentials.update(c, change, actorOf(principal))) };
      },
    }),
    route({
      method: 'delete', path: '/credentials/{id}', roles: EDIT_ROLES, params: credentialParams, summary: 'Delete a credential (flows using it fail from then on)',
      responses: { 204: 'Deleted', 403: 'A global credential without admin rights', 404: 'Unknown credential', 503: 'FLOWGATE_ENCRYPTION_KEY is not set' },
      async handler({ principal, params }) {
        const c = await visible(principal, params.id);
        writable(principal, c);
        await s.credentials.delete(c, actorOf(principal));
        return { status: 204 };
      },
    }),
  ];
}
