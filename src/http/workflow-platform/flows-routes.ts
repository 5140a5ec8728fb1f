import type { Context } from 'koa';
import { z } from 'zod';
import type { Services } from '../../container.js';
import { executeFlow } from '../../core/flows/execute-flow.js';
import type { FlowDocument, FlowRevision } from '../../core/flows/flow-documents.js';
import { actorOf, canAccessProject } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { manifestSource } from '../../core/registry/load-manifests.js';
import type { FlowDefinition } from '../../core/registry/manifest-schema.js';
import { startedByOf } from '../../core/runs/run-permissions.js';
import { credentialNames } from '../../core/credentials/credential-resolver.js';
import type { Project } from '../../db/entities/project.js';
import { AppError, badRequest, invalidContent, notFound } from '../../errors.js';
import { BodyTooLarge, readBody, readRaw } from '../body.js';
import { route } from '../route.js';
import { validate } from '../validate.js';
import { flowTargets } from './flow-target.js';
import { EDIT_ROLES, EXECUTE_ROLES } from './roles.js';

/** The namespace manifest flow types are listed in (reserved: no project may take it). */
const MANIFEST_NAMESPACE = 'flowgate';
/** Bigger YAML is refused with 413. */
const MAX_YAML = 256 * 1024;

const yamlContent = z.string().min(1, 'required');
const namespace = z.string().min(1).max(63);
const createBody = z.strictObject({ yamlContent, namespace: namespace.optional(), name: z.string().optional(), description: z.string().optional() });
const updateBody = z.strictObject({ yamlContent, revision: z.number().int().min(1).optional() });
const validateBody = z.strictObject({ yamlContent, namespace: namespace.optional() });
const importBody = z.object({ version: z.literal(1).optional(), yamlContent, namespace: namespace.optional(), name: z.string().optional(), description: z.string().optional() }).loose();
const executeBody = z.object({ inputs: z.record(z.string(), z.unknown()).default({}), namespace: namespace.optional() }).catchall(z.unknown());
const idParams = z.object({ id: z.string().min(1).max(200) });
const revParams = z.object({ id: z.string().min(1).max(200), rev: z.coerce.number().int().min(1) });

const iso = (d: Date | string) => new Date(d).toISOString();

/**
 * Warnings for credentials a task names that nothing sets for this namespace now (an environment
 * variable, a global credential or one of the namespace): a warning, not an error, since a
 * document may be written before its credential — the task fails `credential X not found` if it
 * is still missing when it runs.
 */
async function unresolvableCredentials(s: Services, steps: FlowDefinition['steps'], project: Project) {
  const known = await s.credentials.knownNames(project.repositoryIdentifier);
  return steps.flatMap((step, i) => credentialNames(step.with).filter((n) => !known.has(n))
    .map((n) => ({ path: `tasks[${i}].properties`, message: `credential ${n} is not set for namespace ${project.namespace} (FLOWGATE_CREDENTIAL_${n}, a global credential or one of the namespace)` })));
}

function presentDocument(d: FlowDocument) {
  return {
    id: d.id, name: d.name, namespace: d.namespace, flowType: `${d.namespace}:${d.name}`, description: d.description, yamlContent: d.yamlContent,
    revision: d.revision, source: 'api', readOnly: false, createdAt: iso(d.createdAt), updatedAt: iso(d.updatedAt), createdBy: d.createdBy, updatedBy: d.updatedBy,
  };
}

function presentManifest(def: FlowDefinition) {
  return {
    id: def.id, name: def.id, namespace: MANIFEST_NAMESPACE, flowType: def.id, description: def.description, yamlContent: manifestSource(def) ?? '',
    revision: null, source: 'manifest', readOnly: true, createdAt: null, updatedAt: null, createdBy: null, updatedBy: null,
  };
}

const presentRevision = (r: FlowRevision) => ({
  revision: r.revision, flowId: r.flowId, yamlContent: r.yamlContent, createdAt: iso(r.createdAt), createdBy: r.createdBy, restoredFrom: r.restoredFrom,
});

/** JSON, or raw YAML (`application/yaml`, `text/*`) for validate: the body as the route reads it. */
async function yamlOrJson(ctx: Context): Promise<unknown> {
  if (/^(application\/(x-)?yaml|text\/)/i.test(ctx.get('content-type'))) return { yamlContent: (await readRaw(ctx, MAX_YAML + 1)).toString('utf8') };
  return (await readBody(ctx)).json ?? {};
}

export function flowRoutes(s: Services) {
  const { projectOfNamespace, flowOf, documentOf, targetOf } = flowTargets(s);
  const yamlFromBody = (yaml: string) => {
    if (Buffer.byteLength(yaml) > MAX_YAML) throw new BodyTooLarge(MAX_YAML);
  };

  return [
    route({
      method: 'get', path: '/flows', roles: READ_ROLES, summary: 'Every flow: the manifest files (read-only) and the flow documents of the namespaces the token may see',
      query: z.object({ namespace: namespace.optional() }),
      responses: { 200: 'The flows' },
      async handler({ principal, query }) {
        const docs = (await s.flowDocuments.list(principal.projects)).filter((d) => !query.namespace || d.namespace === query.namespace);
        const manifests = !query.namespace || query.namespace === MANIFEST_NAMESPACE ? s.registry.manifests().map(presentManifest) : [];
        return { body: [...manifests, ...docs.map(presentDocument)] };
      },
    }),
    route({
      method: 'post', path: '/flows/validate', roles: READ_ROLES, summary: 'Checks a flow document: always 200 with its errors and warnings, by path',
      responses: { 200: '`{valid, errors: [{path, message}], warnings}`' },
      async handler({ principal, ctx }) {
        const body = validate(validateBody, await yamlOrJson(ctx), 'body');
        const c = s.flowDocuments.check(body.yamlContent);
        const errors = [...c.errors];
        const ns = body.namespace ?? c.namespace;
        const warnings = [...c.warnings];
        if (body.namespace && c.namespace && body.namespace !== c.namespace) errors.push({ path: 'namespace', message: `the body says ${body.namespace}, the YAML ${c.namespace}` });
        else if (ns) {
          const project = await s.projects.byNamespace(ns);
          if (!project || !canAccessProject(principal, project.repositoryIdentifier)) errors.push({ path: 'namespace', message: `no namespace ${ns}` });
          else warnings.push(...await unresolvableCredentials(s, c.definition?.steps ?? [], project));
        }
        return { body: { valid: errors.length === 0, errors, warnings } };
      },
    }),
    route({
      method: 'post', path: '/flows/import', roles: EDIT_ROLES, summary: 'Imports an exported flow (201); a taken name is 409, or a new revision with ?overwrite=true (200)',
      query: z.object({ overwrite: z.enum(['true', 'false']).optional() }), body: importBody,
      responses: { 200: 'Overwritten', 201: 'Imported', 409: 'Name taken', 422: 'Invalid flow document' },
      async handler({ principal, query, body, ctx }) {
        yamlFromBody(body.yamlContent);
        const compiled = s.flowDocuments.check(body.yamlContent);
        const project = await projectOfNamespace(principal, body.namespace ?? compiled.namespace);
        const existing = compiled.name ? (await s.flowDocuments.list([project.repositoryIdentifier])).find((d) => d.name === compiled.name) : undefined;
        if (existing && query.overwrite === 'true') {
          const doc = await s.flowDocuments.update(existing, body.yamlContent, undefined, actorOf(principal), { action: 'flow.imported' });
          return { body: presentDocument(doc) };
        }
        // The YAML is the flow; the export's name and description only describe it.
        const doc = await s.flowDocuments.create({ yamlContent: body.yamlContent, project }, actorOf(principal), 'flow.imported');
        ctx.set('Location', `/api/v1/flows/${doc.id}`);
        return { status: 201, body: presentDocument(doc) };
      },
    }),
    route({
      method: 'post', path: '/flows', roles: EDIT_ROLES, body: createBody, summary: 'Creates a flow document in a namespace',
      responses: { 201: 'Created', 409: 'Name taken in the namespace', 422: 'Invalid flow document (errors and warnings by path), or unknown namespace' },
      async handler({ principal, body, ctx }) {
        yamlFromBody(body.yamlContent);
        const compiled = s.flowDocuments.check(body.yamlContent);
        if (body.namespace && compiled.namespace && body.namespace !== compiled.namespace)
          throw invalidContent('namespace: the body and the YAML differ', { errors: [{ path: 'namespace', message: `the body says ${body.namespace}, the YAML ${compiled.namespace}` }], warnings: [] });
        const project = await projectOfNamespace(principal, body.namespace ?? compiled.namespace);
        const doc = await s.flowDocuments.create({ yamlContent: body.yamlContent, project, name: body.name, description: body.description }, actorOf(principal));
        ctx.set('Location', `/api/v1/flows/${doc.id}`);
        return { status: 201, body: presentDocument(doc) };
      },
    }),
    route({
      method: 'get', path: '/flows/{id}', roles: READ_ROLES, params: idParams, summary: 'One flow (a document by id, a manifest by its flow type id)',
      responses: { 200: 'The flow', 404: 'No such flow, or one of a namespace the token may not see' },
      async handler({ principal, params }) {
        const f = await flowOf(principal, params.id);
        return { body: 'doc' in f ? presentDocument(f.doc) : presentManifest(f.manifest) };
      },
    }),
    route({
      method: 'put', path: '/flows/{id}', roles: EDIT_ROLES, params: idParams, body: updateBody,
      summary: 'Replaces a flow document\'s YAML: a new revision when it changed; `revision` guards against a stale write (409)',
      responses: { 200: 'The flow', 403: 'A manifest flow (read-only)', 409: 'Stale revision, or the new name is taken', 422: 'Invalid flow document' },
      async handler({ principal, params, body }) {
        yamlFromBody(body.yamlContent);
        const doc = await documentOf(principal, params.id);
        return { body: presentDocument(await s.flowDocuments.update(doc, body.yamlContent, body.revision, actorOf(principal))) };
      },
    }),
    route({
      method: 'delete', path: '/flows/{id}', roles: EDIT_ROLES, params: idParams,
      summary: 'Deletes a flow document with its revisions; its executions stay, running ones finish on their snapshot',
      responses: { 204: 'Deleted', 403: 'A manifest flow (read-only)' },
      async handler({ principal, params }) {
        await s.flowDocuments.delete(await documentOf(principal, params.id), actorOf(principal));
        return { status: 204 };
      },
    }),
    route({
      method: 'get', path: '/flows/{id}/export', roles: READ_ROLES, params: idParams, summary: 'The flow as a file to import elsewhere',
      responses: { 200: '`{version: 1, name, namespace, description, yamlContent, revision, exportedAt}`' },
      async handler({ principal, params }) {
        const f = await flowOf(principal, params.id);
        const shown = 'doc' in f ? presentDocument(f.doc) : presentManifest(f.manifest);
        return {
          headers: { 'Content-Disposition': `attachment; filename="${shown.namespace}.${shown.name}.json"` },
          body: { version: 1, name: shown.name, namespace: shown.namespace, description: shown.description, yamlContent: shown.yamlContent, revision: shown.revision, exportedAt: new Date().toISOString() },
        };
      },
    }),
    route({
      method: 'get', path: '/flows/{id}/revisions', roles: READ_ROLES, params: idParams, summary: 'Every revision of a flow document, newest first',
      responses: { 200: 'The revisions (a manifest flow has none)' },
      async handler({ principal, params }) {
        const f = await flowOf(principal, params.id);
        return { body: 'doc' in f ? (await s.flowDocuments.revisions(f.doc.id)).map(presentRevision) : [] };
      },
    }),
    route({
      method: 'get', path: '/flows/{id}/revisions/{rev}', roles: READ_ROLES, params: revParams, summary: 'One revision of a flow document',
      responses: { 200: 'The revision', 404: 'No such revision' },
      async handler({ principal, params }) {
        const doc = await documentOf(principal, params.id).catch((err) => { throw err instanceof AppError && err.code === 'forbidden' ? notFound(`flow ${params.id} has no revisions`) : err; });
        const r = await s.flowDocuments.revision(doc.id, params.rev);
        if (!r) throw notFound(`flow ${params.id} has no revision ${params.rev}`);
        return { body: presentRevision(r) };
      },
    }),
    route({
      method: 'post', path: '/flows/{id}/revisions/{rev}/restore', roles: EDIT_ROLES, params: revParams,
      summary: 'Makes an earlier revision current again, as a new revision (re-validated)',
      responses: { 200: 'The flow', 403: 'A manifest flow (read-only)', 404: 'No such revision', 422: 'The revision is no longer valid' },
      async handler({ principal, params }) {
        const doc = await documentOf(principal, params.id);
        return { body: presentDocument(await s.flowDocuments.restore(doc, params.rev, actorOf(principal))) };
      },
    }),
    route({
      method: 'post', path: '/flows/{id}/execute', roles: EXECUTE_ROLES, params: idParams,
      summary: 'Starts an execution of the flow with `inputs` (manifest flows name the `namespace` to run in)',
      responses: { 202: '`{executionId, status: "QUEUED", tasksTotal}`', 400: 'Keys outside `inputs`', 409: 'The flow is disabled in the namespace', 422: 'Invalid inputs, or a namespace missing or other than the flow\'s' },
      async handler({ principal, params, ctx }) {
        const { json } = await readBody(ctx);
        const body = validate(executeBody, json ?? {}, 'body');
        const stray = Object.keys(body).filter((k) => k !== 'inputs' && k !== 'namespace');
        if (stray.length) throw badRequest('put inputs under `inputs`', stray.map((k) => ({ field: k, message: 'unknown key: put inputs under `inputs`', location: 'body' as const })));
        const target = await targetOf(principal, params.id, body.namespace);
        const by = startedByOf(principal);
        const { run, tasksTotal } = await executeFlow(s.runs, target, body.inputs, { triggeredBy: by, actor: actorOf(principal), trigger: { type: principal.email ? 'manual' : 'api', by } });
        ctx.set('Location', `/api/v1/executions/${run.id}`);
        return { status: 202, body: { executionId: run.id, status: 'QUEUED', tasksTotal } };
      },
    }),
  ];
}
