import type { Services } from '../../container.js';
import type { FlowDocument } from '../../core/flows/flow-documents.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import type { FlowDefinition } from '../../core/registry/manifest-schema.js';
import type { Project } from '../../db/entities/project.js';
import { forbidden, invalidContent, notFound } from '../../errors.js';

/** A flow the caller may run, where it runs: a document in its own project, a manifest flow type in the namespace named. */
export interface FlowTarget {
  flowId: string;
  flowType: string;
  project: Project;
  /** The flow document's id; null for a manifest flow type. */
  documentId: string | null;
}

/** How a flow id (and a namespace) from a request becomes a flow and a project, for the caller. */
export function flowTargets(s: Services) {
  /** A namespace the caller may use; an unknown or invisible one is content the caller got wrong (422). */
  const projectOfNamespace = async (p: Principal, ns: string | undefined, field = 'namespace'): Promise<Project> => {
    if (ns === undefined) {
      // A token of one project needs not say which.
      if (p.projects?.length === 1) return s.projects.get(p.projects[0]);
      throw invalidContent('namespace is required', { errors: [{ path: field, message: 'required: the namespace (project) the flow belongs to' }] });
    }
    const project = await s.projects.byNamespace(ns);
    if (!project || !canAccessProject(p, project.repositoryIdentifier))
      throw invalidContent(`unknown namespace ${ns}`, { errors: [{ path: field, message: `no namespace ${ns} (GET /api/v1/namespaces)` }] });
    return project;
  };

  /** A document the caller may see (404 otherwise, as for a missing one), or a manifest flow type. */
  const flowOf = async (p: Principal, id: string): Promise<{ doc: FlowDocument } | { manifest: FlowDefinition }> => {
    const doc = await s.flowDocuments.find(id);
    if (doc && canAccessProject(p, doc.repositoryIdentifier)) return { doc };
    const manifest = s.registry.manifests().find((d) => d.id === id);
    if (manifest) return { manifest };
    throw notFound(`No flow ${id}`);
  };

  const documentOf = async (p: Principal, id: string): Promise<FlowDocument> => {
    const f = await flowOf(p, id);
    if ('manifest' in f) throw forbidden(`flow ${id} is a manifest file: read-only here`);
    return f.doc;
  };

  /** Where a flow runs: a document only in its namespace (another one is 422); a manifest flow type in the namespace given. */
  const targetOf = async (p: Principal, flowId: string, namespace: string | undefined): Promise<FlowTarget> => {
    const f = await flowOf(p, flowId);
    if ('doc' in f) {
      if (namespace && namespace !== f.doc.namespace)
        throw invalidContent(`flow ${f.doc.id} runs in namespace ${f.doc.namespace} only`, { errors: [{ path: 'namespace', message: `must be ${f.doc.namespace} (or left out)` }] });
      return { flowId: f.doc.id, flowType: `${f.doc.namespace}:${f.doc.name}`, project: await s.projects.get(f.doc.repositoryIdentifier), documentId: f.doc.id };
    }
    return { flowId: f.manifest.id, flowType: f.manifest.id, project: await projectOfNamespace(p, namespace), documentId: null };
  };

  return { projectOfNamespace, flowOf, documentOf, targetOf };
}
