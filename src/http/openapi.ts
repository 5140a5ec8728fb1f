import { z } from 'zod';
import type { Dialect, RouteSpec } from './route.js';

const jsonSchema = (schema: z.ZodType) => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

function parameters(spec: RouteSpec) {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (!schema) continue;
    const js = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, s] of Object.entries(js.properties ?? {}))
      out.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s });
  }
  return out;
}

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
export function buildOpenApi(dialects: Dialect[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const d of dialects) {
    for (const r of d.routes) {
      const path = d.prefix + r.path.replace(/\{\*(\w+)\}/g, '{$1}');
      paths[path] ??= {};
      paths[path][r.method] = {
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        tags: [d.name],
        ...(r.roles === 'public' ? { security: [] } : { 'x-roles': r.roles }),
        parameters: parameters(r),
        ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body) } } } } : {}),
        responses: Object.fromEntries(Object.entries<RouteSpec['responses'][number]>({
          ...(r.roles === 'public' ? {} : { 401: 'Missing or invalid bearer token', 403: `Forbidden - Requires role: ${(r.roles as string[]).join(', ')}` }),
          ...r.responses,
        }).map(([status, v]) => [status, typeof v === 'string' ? { description: v } : { description: v.description, content: { 'application/json': { schema: jsonSchema(v.schema) } } }])),
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Flowgate', version, description: 'Chat-ops bot and approval gateway: durable flows, approvals, and their REST dialects.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
