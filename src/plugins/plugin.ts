import type { z } from 'zod';
import type { Kind, KindCall } from '../executor/kinds.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import { render, renderUrl } from '../core/expressions/templates.js';
import { redact } from '../core/secrets.js';
import { StepFailure } from '../engine/step-failure.js';

export const PLUGIN_CATEGORIES = [
  { id: 'core', name: 'Core' },
  { id: 'flow', name: 'Flow control' },
  { id: 'protocol', name: 'Protocols' },
  { id: 'saas', name: 'Services' },
  { id: 'transform', name: 'Transforms' },
  { id: 'utility', name: 'Utilities' },
] as const;
export type PluginCategory = (typeof PLUGIN_CATEGORIES)[number]['id'];

/**
 * A step kind: the one definition the manifest validator, the executor's dispatch, the plugin
 * catalogue (`GET /api/v1/plugins`) and the docs all come from.
 */
export interface Plugin {
  /** `<family>.<name>`, the name the catalogue lists. */
  id: string;
  name: string;
  category: PluginCategory;
  description: string;
  /** Other names a flow may use for it (the first kinds' earlier names among them). */
  aliases: string[];
  /**
   * The name stored in definitions and step rows and known to the engines: the earlier name for
   * the kinds that had one (runs in flight keep working), else the id.
   */
  engineName: string;
  /** Its `with` (`properties`) block once rendered. */
  input: z.ZodType;
  output: z.ZodType;
  /** May receive credentials in its input (its outputs are redacted). */
  credentials: boolean;
  /** What it needs to run here: `door:slack`, `setting:FLOWGATE_SMTP_URL`… */
  requires: string[];
  /** Acts outside Flowgate: it starts only once what it depends on is committed. */
  effectful: boolean;
  run: Kind;
  /** A branching step: the steps its output rules out (skipped with their descendants). */
  branches?(step: StepDefinition, output: unknown, steps: StepDefinition[]): string[];
  /** Load-time rules a step of this kind must keep beyond its input schema (`key` is under `with`). */
  checkStep?(step: StepDefinition, steps: StepDefinition[]): { key: string; message: string }[];
}

/** A plugin written against the catalogue: defaults for the optional parts. */
export function plugin(p: Omit<Plugin, 'aliases' | 'engineName' | 'credentials' | 'requires' | 'effectful'> & Partial<Plugin>): Plugin {
  return { aliases: [], engineName: p.id, credentials: false, requires: [], effectful: false, ...p };
}

/**
 * The step's `with` rendered and checked against the plugin's input schema; a bad value fails the
 * step for good, naming the field. `credentials`: rendered with them (plugins that take them),
 * and no message shows one. `url`: its `url` is rendered as a URL (values percent-encoded, as
 * `http.request` does), for plugins that call out.
 */
export function inputOf<S extends z.ZodType>(c: KindCall, schema: S, o: { credentials?: boolean; url?: boolean } = {}): z.infer<S> {
  const ctx = o.credentials ? { ...c.context, credentials: c.credentials } : c.context;
  const fail = (message: string) => new StepFailure(o.credentials ? redact(message, c.credentials) : message, false);
  let rendered: unknown;
  try {
    const { url, ...rest } = c.step.with;
    rendered = o.url ? { ...(render(rest, ctx) as Record<string, unknown>), ...(url === undefined ? {} : { url: renderUrl(url, ctx) }) } : render(c.step.with, ctx);
  } catch (err) {
    throw fail((err as Error).message);
  }
  const parsed = schema.safeParse(rendered);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw fail(`invalid input for ${c.step.type} step: ${why}`);
  }
  return parsed.data;
}
