import { jsonpath } from 'json-p3';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { evaluate } from '../core/expressions/expressions.js';
import { render } from '../core/expressions/templates.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { parseCsv, stringifyCsv } from './csv.js';
import { inputOf, plugin } from './plugin.js';

const fail = (message: string) => new StepFailure(message, false);

const jsonpathInput = z.strictObject({ value: z.unknown(), path: z.string().min(1) });
export const transformJsonpath = plugin({
  id: 'transform.jsonpath', name: 'JSONPath', category: 'transform',
  description: 'Selects values with a JSONPath query (RFC 9535): every match, and the first (null when none).',
  input: jsonpathInput, output: z.object({ matches: z.array(z.unknown()), first: z.unknown() }),
  run: async (c) => {
    const i = inputOf(c, jsonpathInput);
    let matches: unknown[];
    try {
      matches = jsonpath.query(i.path, i.value as never).values();
    } catch (err) {
      throw fail(`with.path: ${(err as Error).message}`);
    }
    return { matches, first: matches[0] ?? null };
  },
});

const yamlInput = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('parse'), value: z.string() }),
  z.strictObject({ op: z.literal('stringify'), value: z.unknown() }),
]);
export const transformYaml = plugin({
  id: 'transform.yaml', name: 'YAML', category: 'transform',
  description: 'Parses YAML text into a value, or writes a value as YAML.',
  input: yamlInput, output: z.object({ value: z.unknown() }),
  run: async (c) => {
    const i = inputOf(c, yamlInput);
    if (i.op === 'stringify') return { value: stringifyYaml(i.value ?? null) };
    try {
      return { value: parseYaml(i.value) ?? null };
    } catch (err) {
      throw fail(`with.value: not YAML (${(err as Error).message.split('\n')[0]})`);
    }
  },
});

const csvInput = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('parse'), value: z.string(), header: z.boolean().default(true), delimiter: z.string().length(1).default(',') }),
  z.strictObject({ op: z.literal('stringify'), value: z.array(z.unknown()), header: z.boolean().default(true), delimiter: z.string().length(1).default(',') }),
]);
export const transformCsv = plugin({
  id: 'transform.csv', name: 'CSV', category: 'transform',
  description: 'Parses CSV (RFC 4180: quoted fields, doubled quotes, line breaks in quotes) into rows — objects by the header line, or lists — or writes rows as CSV.',
  input: csvInput, output: z.object({ value: z.unknown() }),
  run: async (c) => {
    const i = inputOf(c, csvInput);
    try {
      return { value: i.op === 'parse' ? parseCsv(i.value, i.delimiter, i.header) : stringifyCsv(i.value, i.delimiter, i.header) };
    } catch (err) {
      throw fail(`with.value: ${(err as Error).message}`);
    }
  },
});

const templateInput = z.strictObject({ template: z.string(), values: z.record(z.string(), z.unknown()).default({}) });
export const transformTemplate = plugin({
  id: 'transform.template', name: 'Template', category: 'transform',
  description: 'Renders a multi-line text with `{{ }}` expressions, which read the run (inputs, outputs…) and `values`.',
  input: templateInput, output: z.object({ text: z.string() }),
  run: async (c) => {
    // The template is rendered here, with `values` in scope; the rest of the block as usual.
    const rest = inputOf({ ...c, step: { ...c.step, with: { ...c.step.with, template: '' } } }, templateInput);
    const template = c.step.with.template;
    if (typeof template !== 'string') throw fail('with.template: must be a string');
    let out: unknown;
    try {
      out = render(template, { ...c.context, values: rest.values });
    } catch (err) {
      throw fail(`with.template: ${(err as Error).message}`);
    }
    return { text: typeof out === 'string' ? out : JSON.stringify(out) };
  },
});

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const duration = z.string().regex(/^-?\d+(\.\d+)?(ms|s|m|h|d|w)$/, 'a duration like 30s, -2h, 7d');
const instant = z.union([z.number(), z.string().min(1)]);
const dateInput = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('now') }),
  z.strictObject({ op: z.literal('parse'), value: instant }),
  z.strictObject({ op: z.literal('format'), value: instant, timezone: z.string().default('UTC'), style: z.enum(['date', 'time', 'datetime']).default('datetime'), locale: z.string().default('en-GB') }),
  z.strictObject({ op: z.literal('add'), value: instant, amount: duration }),
  z.strictObject({ op: z.literal('diff'), value: instant, other: instant }),
]);
export const transformDate = plugin({
  id: 'transform.date', name: 'Date and time', category: 'transform',
  description: 'now; parse (ISO 8601 or epoch ms); format in a time zone; add a duration (30s, -2h, 7d); diff of two instants. Always gives `iso` and `epochMs`.',
  input: dateInput,
  output: z.object({ iso: z.string(), epochMs: z.number(), text: z.string().optional(), diffMs: z.number().optional() }),
  run: async (c) => {
    const i = inputOf(c, dateInput);
    const at = (v: number | string, field = 'value'): number => {
      const ms = typeof v === 'number' ? v : /^-?\d+$/.test(v) ? Number(v) : Date.parse(v);
      if (!Number.isFinite(ms)) throw fail(`with.${field}: not a date (ISO 8601 or epoch milliseconds)`);
      return ms;
    };
    const out = (ms: number) => ({ iso: new Date(ms).toISOString(), epochMs: ms });
    switch (i.op) {
      case 'now':
        return out(Date.now());
      case 'parse':
        return out(at(i.value));
      case 'add': {
        const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(i.amount)!;
        return out(at(i.value) + Number(m[1]) * UNITS[m[2]]);
      }
      case 'diff': {
        const a = at(i.value);
        return { ...out(a), diffMs: a - at(i.other, 'other') };
      }
      case 'format': {
        const ms = at(i.value);
        const style = i.style === 'date' ? { dateStyle: 'medium' as const } : i.style === 'time' ? { timeStyle: 'short' as const } : { dateStyle: 'medium' as const, timeStyle: 'short' as const };
        try {
          return { ...out(ms), text: new Intl.DateTimeFormat(i.locale, { ...style, timeZone: i.timezone }).format(ms) };
        } catch (err) {
          throw fail(`with.timezone: ${(err as Error).message}`);
        }
      }
    }
  },
});

/** A CEL expression evaluated once per item (`item`, `index`, and the run's names); a failure names the item. */
function perItem(c: KindCall, expression: string, items: unknown[], field: string): unknown[] {
  return items.map((item, index) => {
    try {
      return evaluate(expression, { ...c.context, item, index });
    } catch (err) {
      throw fail(`with.${field}: item ${index}: ${(err as Error).message}`);
    }
  });
}

const mapInput = z.strictObject({ items: z.array(z.unknown()).max(10_000), expression: z.string().min(1) });
export const transformMap = plugin({
  id: 'transform.map', name: 'Map', category: 'transform',
  description: 'A CEL expression evaluated for each `item` (with its `index`): the list of results. Write the expression without braces.',
  input: mapInput, output: z.object({ items: z.array(z.unknown()) }),
  run: async (c) => {
    const i = inputOf(c, mapInput);
    return { items: perItem(c, i.expression, i.items, 'expression') };
  },
});

const filterInput = z.strictObject({ items: z.array(z.unknown()).max(10_000), condition: z.string().min(1) });
export const transformFilter = plugin({
  id: 'transform.filter', name: 'Filter', category: 'transform',
  description: 'The items for which a CEL condition on `item` (and `index`) is true. Write the condition without braces.',
  input: filterInput, output: z.object({ items: z.array(z.unknown()) }),
  run: async (c) => {
    const i = inputOf(c, filterInput);
    const verdicts = perItem(c, i.condition, i.items, 'condition');
    const bad = verdicts.findIndex((v) => typeof v !== 'boolean');
    if (bad >= 0) throw fail(`with.condition: item ${bad}: gave ${JSON.stringify(verdicts[bad])}, not true or false`);
    return { items: i.items.filter((_, n) => verdicts[n]) };
  },
});

const sortInput = z.strictObject({ items: z.array(z.unknown()).max(10_000), by: z.string().min(1).optional(), order: z.enum(['asc', 'desc']).default('asc') });
export const transformSort = plugin({
  id: 'transform.sort', name: 'Sort', category: 'transform',
  description: 'Sorts items by a CEL expression on `item` (or by the items themselves): numbers by value, text by code point; stable.',
  input: sortInput, output: z.object({ items: z.array(z.unknown()) }),
  run: async (c) => {
    const i = inputOf(c, sortInput);
    const keys = i.by ? perItem(c, i.by, i.items, 'by') : i.items;
    const kinds = new Set(keys.map((k) => typeof k));
    if (kinds.size > 1 || !['number', 'string', 'bigint'].includes([...kinds][0] ?? 'number'))
      throw fail(`with.by: the sort keys must all be numbers or all text, got ${[...kinds].join(' and ')}`);
    const sign = i.order === 'asc' ? 1 : -1;
    const order = keys.map((k, n) => ({ k: k as number | string, n })).sort((a, b) => (a.k < b.k ? -sign : a.k > b.k ? sign : a.n - b.n));
    return { items: order.map((o) => i.items[o.n]) };
  },
});

const groupInput = z.strictObject({ items: z.array(z.unknown()).max(10_000), by: z.string().min(1) });
export const transformGroup = plugin({
  id: 'transform.group', name: 'Group', category: 'transform',
  description: 'Groups items by a CEL expression on `item`: `{groups: {<key>: [items…]}}`, keys in first-seen order.',
  input: groupInput, output: z.object({ groups: z.record(z.string(), z.array(z.unknown())) }),
  run: async (c) => {
    const i = inputOf(c, groupInput);
    const keys = perItem(c, i.by, i.items, 'by');
    const groups: Record<string, unknown[]> = {};
    keys.forEach((k, n) => {
      const key = typeof k === 'string' ? k : JSON.stringify(k);
      (groups[key] ??= []).push(i.items[n]);
    });
    return { groups };
  },
});

export const DATA_TRANSFORMS = [transformJsonpath, transformYaml, transformCsv, transformTemplate, transformDate, transformMap, transformFilter, transformSort, transformGroup];
