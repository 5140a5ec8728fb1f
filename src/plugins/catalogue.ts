import { z } from 'zod';
import { utilLog, utilSleep, notifyThread } from './core.js';
import { flowApproval, flowSubflow, flowWaitForEvent } from './flow.js';
import { httpRequest } from './http.js';
import { flowFail } from './flow-fail.js';
import { cicdRun } from './cicd.js';
import { flowLock } from './flow-lock.js';
import { TRANSFORMS } from './transforms.js';
import { DATA_TRANSFORMS } from './data-transforms.js';
import { KV_PLUGINS } from './kv.js';
import { PROTOCOLS } from './protocols.js';
import { BRANCHING } from './branching.js';
import { INCIDENTS } from './incidents.js';
import { JIRA } from './jira.js';
import { UTILITIES } from './utilities.js';
import { SAAS_PLUGINS } from './saas.js';
import { emailSmtp } from './email.js';
import { PLUGIN_CATEGORIES, type Plugin } from './plugin.js';

/** Every step kind Flowgate runs. A kind is added here and nowhere else. */
export const PLUGINS: readonly Plugin[] = [
  utilLog, utilSleep, notifyThread, flowApproval, flowWaitForEvent, flowSubflow, flowFail, cicdRun, flowLock, ...BRANCHING, httpRequest, ...PROTOCOLS, ...TRANSFORMS, ...DATA_TRANSFORMS, ...UTILITIES, ...KV_PLUGINS, ...INCIDENTS, ...JIRA,
  ...SAAS_PLUGINS, emailSmtp,
];

const byName = new Map<string, Plugin>();
for (const p of PLUGINS) for (const name of [p.id, p.engineName, ...p.aliases]) {
  if (byName.has(name) && byName.get(name) !== p) throw new Error(`plugin name ${name} is used twice`);
  byName.set(name, p);
}

/** The plugin a flow names by its id, an alias or its engine name. */
export function pluginFor(name: string): Plugin | undefined {
  return byName.get(name);
}

/** Names close to a mistyped one (edit distance ≤ 2, or the same last part), for "did you mean". */
export function closeNames(name: string): string[] {
  const tail = (n: string) => n.slice(n.lastIndexOf('.') + 1);
  return PLUGINS.map((p) => p.id).filter((id) => distance(id, name) <= 2 || tail(id) === tail(name)).slice(0, 3);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** Why an unknown kind is refused, with the closest names. */
export function unknownPluginMessage(name: string): string {
  const close = closeNames(name);
  return `unknown plugin "${name}"${close.length ? ` (did you mean ${close.join(', ')}?)` : ''}`;
}

/** The catalogue entry of a plugin: JSON Schema (draft 2020-12) generated from its zod schemas. */
export function describePlugin(p: Plugin, unavailableReason: string | null) {
  return {
    id: p.id, name: p.name, category: p.category, description: p.description, aliases: p.aliases,
    inputSchema: jsonSchema(p.input, 'input'), outputSchema: jsonSchema(p.output, 'output'),
    credentials: p.credentials, requires: p.requires, available: unavailableReason === null,
    ...(unavailableReason === null ? {} : { unavailableReason }),
  };
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  // Refinements and transforms have no JSON Schema; the shape is what a reader needs.
  return z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
}

export function categories(): { id: string; name: string; count: number }[] {
  return PLUGIN_CATEGORIES.map((c) => ({ id: c.id, name: c.name, count: PLUGINS.filter((p) => p.category === c.id).length })).filter((c) => c.count > 0);
}
