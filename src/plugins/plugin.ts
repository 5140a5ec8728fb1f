import type { z } from 'zod';
import type { Kind, KindCall } from '../executor/kinds.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import { render } from '../core/expressions/templates.js';
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
 * The step's `with` rendered (with credentials for plugins that take them) and checked against
 * the plugin's input schema; a bad value fails the step for good, naming the field.
 */
export function inputOf<S extends z.ZodType>(c: KindCall, schema: S, withCredentials = false): z.infer<S> {
  let rendered: unknown;
  try {
    rendered = render(c.step.with, withCredentials ? { ...c.context, credentials: c.credentials } : c.context);
  } catch (err) {
    throw new StepFailure((err as Error).message, false);
  }
  const parsed = schema.safeParse(rendered);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StepFailure(`invalid input for ${c.step.type} step: ${why}`, false);
  }
  return parsed.data;
}
