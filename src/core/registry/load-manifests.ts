import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { syntaxProblem } from '../expressions/expressions.js';
import { mentionsCredentials, templateProblems } from '../expressions/templates.js';
import { cronProblem, timezoneProblem } from '../schedules/cron.js';
import { approvalPolicyProblems } from './approval-step-rules.js';
import { graphProblems } from './graph.js';
import { manifestSchema, type FlowDefinition } from './manifest-schema.js';
import { withKeyProblems } from './step-inputs.js';
import { pluginFor } from '../../plugins/catalogue.js';

export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid flow manifests:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ManifestError';
  }
}

/** A problem with a flow definition, at a path inside it. */
export interface DefinitionProblem {
  path: (string | number)[];
  message: string;
}

/** `['steps', 2, 'with', 'url']` → `steps[2].with.url`. */
export const pathText = (p: (string | number)[]) => (p.length ? p.map((x) => (typeof x === 'number' ? `[${x}]` : x)).join('.').replace(/\.\[/g, '[') : '(root)');

const fmt = (file: string, p: (string | number)[], message: string) => `${file}: ${pathText(p)}: ${message}`;

/** Validates one manifest's text; returns the definition or the problems, each naming file and field. */
export function parseManifest(file: string, text: string): { definition?: FlowDefinition; problems: string[] } {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    return { problems: [`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`] };
  }
  const checked = checkDefinition(raw);
  return { definition: checked.definition, problems: checked.problems.map((p) => fmt(file, p.path, p.message)) };
}

/** Every rule a flow definition in the manifest form must keep (manifest files and flow documents alike). */
export function checkDefinition(raw: unknown): { definition?: FlowDefinition; problems: DefinitionProblem[] } {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message })) };
  const def = parsed.data;
  const problems: DefinitionProblem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ path, message });
  for (const g of graphProblems(def.steps)) add(['steps', ...g.path], g.message);
  def.steps.forEach((s, i) => {
    if (s.if) {
      const p = syntaxProblem(s.if);
      if (p) add(['steps', i, 'if'], `invalid expression: ${p}`);
    }
    // The schema resolved the name: the plugin exists.
    const plugin = pluginFor(s.type)!;
    const credentialsRule = `credentials may only be used by plugins that take them (\`credentials: true\` in GET /api/v1/plugins): a ${plugin.id} step would store or show them`;
    if (!plugin.credentials && mentionsCredentials(s.with)) add(['steps', i, 'with'], credentialsRule);
    if (s.if && /\bcredentials\b/.test(s.if)) add(['steps', i, 'if'], 'credentials may not be used in conditions');
    for (const w of withKeyProblems(s.type, plugin.input, s.with)) add(['steps', i, 'with', w.key], w.message);
    for (const w of plugin.checkStep?.(s, def.steps) ?? []) add(['steps', i, 'with', w.key], w.message);
    if (s.type === 'approval') for (const w of approvalPolicyProblems(s.with)) add(['steps', i, 'with', w.key], w.message);
    for (const t of templateProblems(s.with, ['steps', i, 'with'])) add(t.path, t.message);
  });
  for (const t of templateProblems(def.outputs ?? {}, ['outputs'])) add(t.path, t.message);
  // cicd.url may be a `{{ credentials.X }}` template, resolved when the run is dispatched.
  if (def.cicd?.url) for (const t of templateProblems(def.cicd.url, ['cicd', 'url'])) add(t.path, t.message);
  def.schedules.forEach((sc, i) => {
    const tz = sc.timezone ? timezoneProblem(sc.timezone) : undefined;
    if (tz) add(['schedules', i, 'timezone'], tz);
    const cron = cronProblem(sc.cron, tz ? undefined : sc.timezone);
    if (cron) add(['schedules', i, 'cron'], cron);
  });
  return problems.length ? { problems } : { definition: def, problems };
}

/** The YAML a manifest's definition was read from (the workflow platform API shows it). */
const SOURCES = new WeakMap<FlowDefinition, string>();
export const manifestSource = (def: FlowDefinition): string | undefined => SOURCES.get(def);

/** Reads every `*.yaml`/`*.yml` in a folder; any problem anywhere stops start-up with all of them listed. */
export function loadManifests(dir: string): FlowDefinition[] {
  if (!fs.existsSync(dir)) throw new ManifestError([`${dir}: manifests folder not found`]);
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const problems: string[] = [];
  const defs: FlowDefinition[] = [];
  const seen = new Map<string, string>();
  const fileOf = new Map<FlowDefinition, string>();
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const { definition, problems: p } = parseManifest(f, text);
    problems.push(...p);
    if (!definition) continue;
    SOURCES.set(definition, text);
    if (seen.has(definition.id)) problems.push(`${f}: id: "${definition.id}" is already defined in ${seen.get(definition.id)}`);
    else seen.set(definition.id, f);
    fileOf.set(definition, f);
    defs.push(definition);
  }
  const scheduleNames = new Map<string, string>();
  for (const d of defs) {
    d.schedules.forEach((sc, i) => {
      const other = scheduleNames.get(sc.name);
      if (other) problems.push(`${fileOf.get(d)}: schedules[${i}].name: "${sc.name}" is already used in ${other}`);
      scheduleNames.set(sc.name, fileOf.get(d)!);
    });
    d.steps.forEach((s, i) => {
      const t = s.with.type;
      if (s.type === 'flow' && typeof t === 'string' && !t.includes('{{') && !seen.has(t))
        problems.push(`${fileOf.get(d)}: steps[${i}].with.type: unknown flow type "${t}"`);
    });
  }
  if (problems.length) throw new ManifestError(problems);
  return defs;
}
