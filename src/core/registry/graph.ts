import type { StepDefinition } from './manifest-schema.js';

/** Problems with a step graph: duplicate refs, unknown dependencies, cycles. Paths index into `steps`. */
export function graphProblems(steps: StepDefinition[]): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const index = new Map<string, number>();
  steps.forEach((s, i) => {
    if (index.has(s.ref)) problems.push({ path: [i, 'ref'], message: `duplicate step ref "${s.ref}"` });
    else index.set(s.ref, i);
  });
  steps.forEach((s, i) =>
    s.dependsOn.forEach((d, j) => {
      if (!index.has(d)) problems.push({ path: [i, 'dependsOn', j], message: `unknown step "${d}"` });
      if (d === s.ref) problems.push({ path: [i, 'dependsOn', j], message: 'a step cannot depend on itself' });
    }),
  );
  problems.push(...compensationProblems(steps, index));
  if (problems.length) return problems;
  // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
  const indegree = new Map(steps.map((s) => [s.ref, s.dependsOn.length]));
  const queue = steps.filter((s) => s.dependsOn.length === 0).map((s) => s.ref);
  let ordered = 0;
  while (queue.length) {
    const ref = queue.shift()!;
    ordered++;
    for (const s of steps) {
      if (s.dependsOn.includes(ref)) {
        indegree.set(s.ref, indegree.get(s.ref)! - 1);
        if (indegree.get(s.ref) === 0) queue.push(s.ref);
      }
    }
  }
  if (ordered < steps.length) {
    // What could not be ordered is on a cycle or downstream of one; peel off the downstream part.
    const stuck = new Set(steps.filter((s) => indegree.get(s.ref)! > 0).map((s) => s.ref));
    for (let peeled = true; peeled; ) {
      peeled = false;
      for (const ref of stuck) {
        if (!steps.some((s) => stuck.has(s.ref) && s.dependsOn.includes(ref))) { stuck.delete(ref); peeled = true; }
      }
    }
    const cyclic = [...stuck];
    problems.push({ path: [], message: `dependency cycle among steps: ${cyclic.join(', ')}` });
  }
  return problems;
}

/**
 * Compensation steps (`compensates: <ref>`) stand off the normal path: they name an existing,
 * ordinary step, have no dependencies of their own, and no step depends on them. Their order comes
 * from the steps they compensate, so they cannot form a cycle.
 */
function compensationProblems(steps: StepDefinition[], index: Map<string, number>): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const compensated = new Set<string>();
  steps.forEach((s, i) => {
    if (!s.compensates) return;
    compensated.add(s.compensates);
    const target = index.has(s.compensates) ? steps[index.get(s.compensates)!] : undefined;
    if (s.compensates === s.ref) problems.push({ path: [i, 'compensates'], message: 'a step cannot compensate itself' });
    else if (!target) problems.push({ path: [i, 'compensates'], message: `unknown step "${s.compensates}"` });
    else if (target.compensates) problems.push({ path: [i, 'compensates'], message: `step "${s.compensates}" is itself a compensation; compensations are not compensated` });
    if (s.dependsOn.length) problems.push({ path: [i, 'dependsOn'], message: 'a compensation step runs only when the run fails, after the steps it undoes: it cannot have dependsOn' });
  });
  steps.forEach((s, i) =>
    s.dependsOn.forEach((d, j) => {
      const dep = index.has(d) ? steps[index.get(d)!] : undefined;
      if (dep?.compensates && !s.compensates) problems.push({ path: [i, 'dependsOn', j], message: `step "${d}" is a compensation (of "${dep.compensates}") and runs only when the run fails: it cannot be a dependency` });
    }),
  );
  steps.forEach((s, i) => {
    if (s.onFailure === 'compensate' && !compensated.has(s.ref))
      problems.push({ path: [i, 'onFailure'], message: `compensate needs a step with "compensates: ${s.ref}"` });
    if (s.compensates && s.onFailure === 'compensate')
      problems.push({ path: [i, 'onFailure'], message: 'a compensation step is not compensated' });
  });
  return problems;
}

/** Every step that (transitively) depends on `ref`. */
export function descendants(steps: StepDefinition[], ref: string): Set<string> {
  const out = new Set<string>();
  const visit = (r: string) => {
    for (const s of steps) if (s.dependsOn.includes(r) && !out.has(s.ref)) { out.add(s.ref); visit(s.ref); }
  };
  visit(ref);
  return out;
}
