import { z } from 'zod';
import type { Services } from '../../container.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { notFound } from '../../errors.js';
import { categories, describePlugin, PLUGINS, pluginFor } from '../../plugins/catalogue.js';
import type { Plugin } from '../../plugins/plugin.js';
import { PLUGIN_CATEGORIES } from '../../plugins/plugin.js';
import { route } from '../route.js';

/** Why a plugin cannot run on this server (a door or a setting it needs is missing), or null. */
function unavailableReason(p: Plugin, s: Services): string | null {
  const doors: Record<string, boolean> = { slack: !!s.config.slack, github: !!s.config.github, 'azure-devops': !!s.config.azureDevOps };
  for (const r of p.requires) {
    const [what, name] = r.split(':');
    if (what === 'door' && !doors[name]) return `the ${name} door is not configured on this server`;
    if (what === 'setting' && !process.env[name]) return `${name} is not set on this server`;
  }
  return null;
}

/** The plugin catalogue: Flowgate's step kinds, generated from their definitions. */
export function pluginRoutes(s: Services) {
  const describe = (p: Plugin) => describePlugin(p, unavailableReason(p, s));
  return [
    route({
      method: 'get', path: '/plugins', roles: READ_ROLES,
      summary: 'Every plugin (step kind) with its input and output JSON Schemas, by id',
      query: z.strictObject({ category: z.enum(PLUGIN_CATEGORIES.map((c) => c.id) as [string, ...string[]]).optional() }),
      responses: { 200: 'The plugins', 400: 'Unknown category' },
      async handler({ query }) {
        const list = PLUGINS.filter((p) => !query.category || p.category === query.category).sort((a, b) => a.id.localeCompare(b.id));
        return { body: list.map(describe) };
      },
    }),
    route({
      method: 'get', path: '/plugins/categories', roles: READ_ROLES,
      summary: 'Plugin categories with how many plugins each has',
      responses: { 200: 'The categories' },
      async handler() {
        return { body: categories() };
      },
    }),
    route({
      method: 'get', path: '/plugins/{id}', roles: READ_ROLES,
      summary: 'One plugin, by its id or an alias (answered with the canonical entry)',
      params: z.strictObject({ id: z.string().min(1).max(100) }),
      responses: { 200: 'The plugin', 404: 'No such plugin' },
      async handler({ params }) {
        const p = pluginFor(params.id);
        if (!p) throw notFound(`No plugin ${params.id}`);
        return { body: describe(p) };
      },
    }),
  ];
}
