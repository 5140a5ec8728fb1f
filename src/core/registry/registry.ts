import { badRequest, notFound, type FieldProblem } from '../../errors.js';
import type { FlowDefinition, Parameter } from './manifest-schema.js';

/**
 * The flow types Flowgate knows: the manifest files, loaded once at start, and the flow documents
 * (`<namespace>:<name>`), kept in step with the database by the flow document service.
 */
export class FlowRegistry {
  private readonly byId: Map<string, FlowDefinition>;
  private documents = new Map<string, FlowDefinition>();
  constructor(definitions: FlowDefinition[]) {
    this.byId = new Map(definitions.map((d) => [d.id, d]));
  }

  list(): FlowDefinition[] {
    return [...this.byId.values(), ...this.documents.values()];
  }

  /**
   * The flow types that can run in these projects (null: all): the manifest files and the
   * projects' own flow documents. What callers of one project are shown (listings, help, "did you
   * mean"): another project's documents neither run there nor are its business.
   */
  listFor(projects: readonly string[] | null): FlowDefinition[] {
    return this.list().filter((d) => !d.document || projects === null || projects.includes(d.document.repositoryIdentifier));
  }

  /** The manifest files' flow types only (read-only in the workflow platform API). */
  manifests(): FlowDefinition[] {
    return [...this.byId.values()];
  }

  find(id: string): FlowDefinition | undefined {
    return this.byId.get(id) ?? this.documents.get(id);
  }

  get(id: string): FlowDefinition {
    const def = this.find(id);
    if (!def) throw notFound(`Flow type "${id}" not found`);
    return def;
  }

  /** Replaces every flow document's flow type (at start, and when notifications may have been missed). */
  setDocuments(defs: FlowDefinition[]): void {
    this.documents = new Map(defs.map((d) => [d.id, d]));
  }

  putDocument(def: FlowDefinition): void {
    // A renamed document leaves its old flow type id.
    if (def.document) this.dropDocument(def.document.id);
    this.documents.set(def.id, def);
  }

  dropDocument(documentId: string): void {
    for (const [id, d] of this.documents) if (d.document?.id === documentId) this.documents.delete(id);
  }

  /** Checks a payload against a flow type's parameters and returns it with defaults applied. */
  applyParameters(def: FlowDefinition, payload: Record<string, unknown>, prefix = 'payload'): Record<string, unknown> {
    const problems: FieldProblem[] = [];
    const out = { ...payload };
    for (const p of def.parameters) {
      const v = payload[p.name];
      if (v === undefined || v === null) {
        if (p.default !== undefined) out[p.name] = p.default;
        else if (p.required) problems.push({ field: `${prefix}.${p.name}`, message: `required parameter of ${def.id} (${p.type}${p.description ? `: ${p.description}` : ''})`, location: 'body' });
        continue;
      }
      const problem = typeProblem(p, v);
      if (problem) problems.push({ field: `${prefix}.${p.name}`, message: problem, location: 'body' });
    }
    if (problems.length) throw badRequest(`Invalid parameters for flow type "${def.id}"`, problems);
    return out;
  }
}

function typeProblem(p: Parameter, v: unknown): string | undefined {
  const actual = Array.isArray(v) ? 'array' : typeof v;
  if (p.type === 'number' ? typeof v !== 'number' || !Number.isFinite(v) : actual !== p.type) return `must be ${p.type === 'array' || p.type === 'object' ? 'an' : 'a'} ${p.type}, got ${actual}`;
  if (p.enum && !p.enum.includes(v as string | number)) return `must be one of ${p.enum.join(', ')}`;
  return undefined;
}
