import { z } from 'zod';
import { evaluate } from '../core/expressions/expressions.js';
import type { StepDefinition } from '../core/registry/manifest-schema.js';
import { StepFailure } from '../engine/step-failure.js';
import { flowKind } from '../executor/kinds.js';
import { inputOf, plugin } from './plugin.js';

const dependentsOf = (ref: string, steps: StepDefinition[]) => steps.filter((s) => s.dependsOn.includes(ref)).map((s) => s.ref);

const ifInput = z.strictObject({ condition: z.union([z.boolean(), z.string().min(1)]) });
export const flowIf = plugin({
  id: 'flow.if', name: 'If', category: 'flow',
  description: 'Evaluates a condition (a CEL expression, or a `{{ }}` template giving true or false): `{result}`. When false, the tasks that depend on it are skipped with their descendants, and the run still completes.',
  input: ifInput, output: z.object({ result: z.boolean() }),
  run: async (c) => {
    const i = inputOf(c, ifInput);
    let result: unknown = i.condition;
    if (typeof result === 'string') {
      try {
        result = evaluate(result, c.context);
      } catch (err) {
        throw new StepFailure(`with.condition: ${(err as Error).message}`, false);
      }
    }
    if (typeof result !== 'boolean') throw new StepFailure(`with.condition: gave ${JSON.stringify(result)}, not true or false`, false);
    c.note('info', result ? 'Condition is true' : 'Condition is false: the tasks that depend on it are skipped');
    return { result };
  },
  branches: (step, output, steps) => ((output as { result?: unknown } | null)?.result === false ? dependentsOf(step.ref, steps) : []),
});

const switchInput = z.strictObject({
  value: z.union([z.string(), z.number(), z.boolean()]),
  cases: z.record(z.string(), z.array(z.string()).min(1)).refine((c) => Object.keys(c).length > 0, 'at least one case'),
  default: z.array(z.string()).optional(),
});
interface SwitchOutput { case: string | null; skipped: string[] }
export const flowSwitch = plugin({
  id: 'flow.switch', name: 'Switch', category: 'flow',
  description: 'Chooses the tasks of the case equal to `value` (or `default`): `{case}`. The tasks of the other cases are skipped with their descendants. Every listed task must depend on the switch.',
  input: switchInput, output: z.object({ case: z.string().nullable(), skipped: z.array(z.string()) }),
  run: async (c) => {
    const i = inputOf(c, switchInput);
    const key = String(i.value);
    const chosen = key in i.cases ? key : i.default ? 'default' : null;
    const lists: Record<string, string[]> = { ...i.cases, ...(i.default ? { default: i.default } : {}) };
    const keep = new Set(chosen === null ? [] : lists[chosen]);
    const skipped = [...new Set(Object.values(lists).flat())].filter((ref) => !keep.has(ref));
    c.note('info', chosen === null ? `No case for ${JSON.stringify(i.value)}: skipping every case` : `Case ${chosen}${chosen === 'default' ? ` (value ${JSON.stringify(i.value)})` : ''}`);
    return { case: chosen, skipped } satisfies SwitchOutput;
  },
  branches: (_step, output) => (output as SwitchOutput | null)?.skipped ?? [],
  checkStep: (step, steps) => {
    const lists = { ...(step.with.cases && typeof step.with.cases === 'object' ? step.with.cases as Record<string, unknown> : {}), ...(Array.isArray(step.with.default) ? { default: step.with.default } : {}) };
    const problems: { key: string; message: string }[] = [];
    for (const [name, refs] of Object.entries(lists)) {
      if (!Array.isArray(refs)) continue;
      for (const ref of refs) {
        const target = steps.find((s) => s.ref === ref);
        if (!target) problems.push({ key: name === 'default' ? 'default' : `cases.${name}`, message: `unknown task "${ref}"` });
        else if (!target.dependsOn.includes(step.ref)) problems.push({ key: name === 'default' ? 'default' : `cases.${name}`, message: `task "${ref}" must depend on ${step.ref} (dependsOn: [${step.ref}])` });
      }
    }
    return problems;
  },
});

const foreachInput = z.strictObject({ flow: z.string().min(1), items: z.array(z.unknown()).max(100, 'at most 100 child runs per step'), inputs: z.record(z.string(), z.unknown()).default({}) });
export const flowForeach = plugin({
  id: 'flow.foreach', name: 'For each', category: 'flow',
  description: 'Runs a flow once per item of a list (at most 100), as child runs side by side; `item` is in scope of `inputs`. Waits for all: `{results: [{runId, item, status, result}]}`; a failed child fails the step.',
  input: foreachInput, output: z.object({ results: z.array(z.object({ runId: z.string(), item: z.unknown(), status: z.string(), result: z.unknown() })) }),
  run: async (c) => {
    // Checked here; the children are started and awaited as `flow.subflow` with forEach does.
    const { flow, inputs, items } = c.step.with as { flow?: unknown; inputs?: unknown; items?: unknown };
    if (!c.prior) inputOf({ ...c, step: { ...c.step, with: { flow, items, inputs: {} } } }, foreachInput);
    const out = await flowKind({ ...c, step: { ...c.step, with: { type: flow, payload: inputs ?? {}, forEach: items } } }) as { children: { runId: string; item: unknown; status: string; result: unknown }[] };
    return { results: out.children };
  },
});

export const BRANCHING = [flowIf, flowSwitch, flowForeach];
