import { z } from 'zod';
import { PLUGINS } from './catalogue.js';
import { PLUGIN_CATEGORIES, type Plugin } from './plugin.js';

/** `{a, b?}` from a JSON Schema object: the keys a step's `with` takes, optional ones marked. */
function keysOf(schema: z.ZodType, io: 'input' | 'output'): string {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[]; anyOf?: unknown[]; oneOf?: unknown[] };
  const variants = (json.anyOf ?? json.oneOf ?? [json]) as { properties?: Record<string, unknown>; required?: string[] }[];
  const shapes = variants.map((v) => (v.properties ? `{${Object.keys(v.properties).map((k) => (v.required ?? []).includes(k) ? k : `${k}?`).join(', ')}}` : 'any'));
  return [...new Set(shapes)].join(' \\| ');
}

const row = (p: Plugin) => `| \`${p.id}\`${p.aliases.length ? ` (${p.aliases.map((a) => `\`${a}\``).join(', ')})` : ''} | ${keysOf(p.input, 'input')} | ${keysOf(p.output, 'output')} | ${[p.credentials ? 'credentials' : '', ...p.requires].filter(Boolean).join(', ')} | ${p.description.replace(/\|/g, '\\|')} |`;

/** The plugin catalogue as Markdown (docs/plugins.md), generated from the same definitions the engine runs. */
export function pluginDocs(): string {
  const out = ['# Plugins', '', `Flowgate's step kinds, generated from their definitions (\`npm run docs\`; a test checks this file is current). ${PLUGINS.length} plugins. Full JSON Schemas: \`GET /api/v1/plugins\`.`, ''];
  for (const c of PLUGIN_CATEGORIES) {
    const list = PLUGINS.filter((p) => p.category === c.id).sort((a, b) => a.id.localeCompare(b.id));
    if (!list.length) continue;
    out.push(`## ${c.name}`, '', '| plugin | properties | output | takes / needs | what it does |', '| --- | --- | --- | --- | --- |', ...list.map(row), '');
  }
  return out.join('\n');
}
