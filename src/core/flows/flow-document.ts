import { parse as parseYaml, YAMLParseError } from 'yaml';
import { checkDefinition, pathText, type DefinitionProblem } from '../registry/load-manifests.js';
import type { FlowDefinition } from '../registry/manifest-schema.js';
import { templateExpressions } from '../expressions/templates.js';

/** A problem or a warning in a flow document, at a path of the document (`tasks[2].properties.url`). */
export interface DocumentIssue {
  path: string;
  message: string;
}

/** What a document says about itself, and the definition it compiles to (absent when it has errors). */
export interface CompiledDocument {
  name?: string;
  namespace?: string;
  description: string;
  definition?: FlowDefinition;
  errors: DocumentIssue[];
  warnings: DocumentIssue[];
}

export const DOCUMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,99}$/;
const TASK_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const DOCUMENT_KEYS = ['name', 'namespace', 'description', 'category', 'inputs', 'tasks', 'outputs', 'timeout', 'maxParallelSteps'];
const TASK_KEYS = ['name', 'type', 'description', 'properties', 'dependsOn', 'depends_on', 'if', 'retry', 'timeout', 'onFailure', 'compensates'];
const MANIFEST_KEYS = ['id', 'parameters', 'steps'];

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Compiles a flow document (the workflow platform's YAML: `name`, `inputs`, `tasks` with `properties`)
 * or a manifest (`id`, `parameters`, `steps` with `with`) into the one flow definition every door and
 * engine runs, checked by the same rules as manifest files. Problems name the document's own paths.
 */
export function compileDocument(yamlText: string): CompiledDocument {
  const errors: DocumentIssue[] = [];
  const warnings: DocumentIssue[] = [];
  let raw: unknown;
  try {
    raw = parseYaml(yamlText, { uniqueKeys: true });
  } catch (err) {
    const at = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line}, column ${err.linePos[0].col})` : '';
    return { description: '', errors: [{ path: '(yaml)', message: `not valid YAML${at}: ${(err as Error).message.split('\n')[0]}` }], warnings };
  }
  if (!isObject(raw)) return { description: '', errors: [{ path: '(root)', message: 'a flow document is a mapping (name, inputs, tasks…)' }], warnings };
  const manifestForm = MANIFEST_KEYS.some((k) => k in raw) && !('tasks' in raw);
  const name = typeof raw.name === 'string' ? raw.name : undefined;
  const namespace = typeof raw.namespace === 'string' ? raw.namespace : undefined;
  const description = typeof raw.description === 'string' ? raw.description : '';
  if (manifestForm) {
    const manifest = Object.fromEntries(Object.entries(raw).filter(([k]) => k !== 'namespace'));
    const checked = checkDefinition(manifest);
    errors.push(...checked.problems.map((p) => ({ path: pathText(p.path), message: p.message })));
    return { name: typeof raw.id === 'string' ? raw.id : undefined, namespace, description, definition: checked.definition, errors, warnings };
  }
  for (const key of Object.keys(raw)) if (!DOCUMENT_KEYS.includes(key)) errors.push({ path: key, message: `unknown key (allowed: ${DOCUMENT_KEYS.join(', ')})` });
  if (name === undefined) errors.push({ path: 'name', message: 'required' });
  else if (!DOCUMENT_NAME.test(name)) errors.push({ path: 'name', message: 'lowercase letters, digits, _ and -, starting with a letter or digit (at most 100)' });
  if (namespace !== undefined && typeof raw.namespace !== 'string') errors.push({ path: 'namespace', message: 'must be a string' });

  const parameters = compileInputs(raw.inputs, errors);
  const tasks = Array.isArray(raw.tasks) ? raw.tasks : [];
  if (!Array.isArray(raw.tasks)) errors.push({ path: 'tasks', message: 'required: a list of tasks' });
  else if (!tasks.length) errors.push({ path: 'tasks', message: 'a flow needs at least one task' });
  const names = new Set(tasks.filter(isObject).map((t) => t.name).filter((n): n is string => typeof n === 'string'));
  const steps = tasks.map((t, i) => compileTask(t, i, names, errors, warnings));
  if (errors.length) return { name, namespace, description, errors, warnings };

  const manifest: Record<string, unknown> = {
    // The flow type id is `<namespace>:<name>`, set by the caller; the checks need a valid placeholder.
    id: 'document', name, description, parameters, steps,
    ...(raw.category !== undefined ? { category: raw.category } : {}),
    ...(raw.outputs !== undefined ? { outputs: raw.outputs } : {}),
    ...(raw.timeout !== undefined ? { timeout: raw.timeout } : {}),
    ...(raw.maxParallelSteps !== undefined ? { maxParallelSteps: raw.maxParallelSteps } : {}),
  };
  const checked = checkDefinition(manifest);
  errors.push(...checked.problems.map((p) => ({ path: documentPath(p, parameters), message: p.message })));
  for (const p of parameters) if (!mentionsInput(steps, raw.outputs, p.name)) warnings.push({ path: `inputs.${p.name}`, message: 'declared but no task uses it' });
  return { name, namespace, description, definition: errors.length ? undefined : checked.definition, errors, warnings };
}

interface CompiledParameter { name: string; type?: string; required?: boolean; default?: unknown; description?: string; enum?: unknown[] }

/** `inputs:` — a value with a `type` key declares the input, any other value is its default (type taken from it). */
function compileInputs(inputs: unknown, errors: DocumentIssue[]): CompiledParameter[] {
  if (inputs === undefined || inputs === null) return [];
  if (!isObject(inputs)) {
    errors.push({ path: 'inputs', message: 'a mapping of input name → default value or declaration' });
    return [];
  }
  return Object.entries(inputs).map(([name, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) errors.push({ path: `inputs.${name}`, message: 'an input name is letters, digits and _, starting with a letter or _' });
    if (isObject(v) && 'type' in v) {
      const allowed = ['type', 'required', 'default', 'description', 'enum'];
      for (const k of Object.keys(v)) if (!allowed.includes(k)) errors.push({ path: `inputs.${name}.${k}`, message: `unknown key (allowed: ${allowed.join(', ')})` });
      return { name, ...v } as CompiledParameter;
    }
    const type = Array.isArray(v) ? 'array' : v === null ? 'string' : typeof v;
    if (!['string', 'number', 'boolean', 'object', 'array'].includes(type)) errors.push({ path: `inputs.${name}`, message: `a default must be a string, number, boolean, list or mapping` });
    return { name, type, default: v ?? undefined };
  });
}

function compileTask(t: unknown, i: number, names: Set<string>, errors: DocumentIssue[], warnings: DocumentIssue[]): Record<string, unknown> {
  const at = `tasks[${i}]`;
  if (!isObject(t)) {
    errors.push({ path: at, message: 'a task is a mapping (name, type, properties…)' });
    return {};
  }
  for (const key of Object.keys(t)) if (!TASK_KEYS.includes(key)) errors.push({ path: `${at}.${key}`, message: `unknown key (allowed: ${TASK_KEYS.filter((k) => k !== 'depends_on').join(', ')})` });
  if (typeof t.name !== 'string') errors.push({ path: `${at}.name`, message: 'required' });
  else if (!TASK_NAME.test(t.name)) errors.push({ path: `${at}.name`, message: 'letters, digits, _ and -, starting with a letter or _' });
  if (typeof t.type !== 'string') errors.push({ path: `${at}.type`, message: 'required: a plugin id (GET /api/v1/plugins)' });
  if ('depends_on' in t) warnings.push({ path: `${at}.depends_on`, message: 'read as dependsOn' });
  const declared = t.dependsOn ?? t.depends_on ?? [];
  if (!Array.isArray(declared)) errors.push({ path: `${at}.dependsOn`, message: 'a list of task names' });
  const properties = t.properties === undefined ? {} : t.properties;
  if (!isObject(properties)) errors.push({ path: `${at}.properties`, message: 'a mapping' });
  const withBlock = isObject(properties) ? (credentialRefs(properties) as Record<string, unknown>) : {};
  const condition = typeof t.if === 'string' ? unbrace(t.if) : t.if;
  // Reading another task's output makes the task wait for it.
  const implied = [...readsOf(withBlock), ...(typeof condition === 'string' ? readsOf(`{{ ${condition} }}`) : [])]
    .filter((n) => names.has(n) && n !== t.name && !(Array.isArray(declared) && declared.includes(n)));
  return {
    ref: t.name, type: t.type, with: withBlock,
    dependsOn: [...(Array.isArray(declared) ? declared : []), ...new Set(implied)],
    ...(t.description !== undefined ? { name: t.description } : {}),
    ...(condition !== undefined ? { if: condition } : {}),
    ...(t.retry !== undefined ? { retry: t.retry } : {}),
    ...(t.timeout !== undefined ? { timeout: t.timeout } : {}),
    ...(t.onFailure !== undefined ? { onFailure: t.onFailure } : {}),
    ...(t.compensates !== undefined ? { compensates: t.compensates } : {}),
  };
}

/** `{{ expr }}` around a whole condition is optional. */
const unbrace = (s: string) => /^\s*\{\{([\s\S]*)\}\}\s*$/.exec(s)?.[1].trim() ?? s;

/** `${NAME}` in a string is `{{ credentials.NAME }}`; `$${` is a literal `${`. */
function credentialRefs(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name) => (m.startsWith('$$') ? m.slice(1) : `{{ credentials.${name} }}`));
  if (Array.isArray(v)) return v.map(credentialRefs);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, credentialRefs(x)]));
  return v;
}

/** The task names an expression reads: `outputs.x`, `outputs["x"]`, `outputs['x']`, `steps.x`. */
function readsOf(value: unknown): string[] {
  const out: string[] = [];
  for (const e of templateExpressions(value)) {
    for (const m of e.matchAll(/\b(?:outputs|steps)\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])/g)) out.push(m[1] ?? m[2]);
  }
  return out;
}

function mentionsInput(steps: Record<string, unknown>[], outputs: unknown, input: string): boolean {
  const re = new RegExp(`\\b(?:inputs|payload)\\s*(?:\\.\\s*${input}\\b|\\[\\s*["']${input}["']\\s*\\])`);
  return [...steps.flatMap((s) => [...templateExpressions(s.with), ...(typeof s.if === 'string' ? [s.if] : [])]), ...templateExpressions(outputs)].some((e) => re.test(e));
}

/** A manifest-form path as the document names it: `steps[2].with.url` → `tasks[2].properties.url`. */
function documentPath(p: DefinitionProblem, parameters: CompiledParameter[]): string {
  const path = [...p.path];
  if (path[0] === 'steps') {
    path[0] = 'tasks';
    if (path[2] === 'with') path[2] = 'properties';
    else if (path[2] === 'ref') path[2] = 'name';
  } else if (path[0] === 'parameters' && typeof path[1] === 'number') {
    return pathText(['inputs', parameters[path[1]]?.name ?? path[1], ...path.slice(2).filter((x) => x !== 'name')]);
  }
  return pathText(path);
}
