import { templateExpressions } from '../expressions/templates.js';
import { stepInputs } from './step-inputs.js';

/** The fields of an approval step that say who decides and how many: the approval policy. */
const POLICY_FIELDS = ['approvers', 'quorum', 'allowSelfApproval'] as const;

/** Variables whose values the person starting a run (or a step they influence) chooses. */
const REQUEST_CHOSEN = /\b(payload|steps|run|item|credentials)\b/;

/**
 * Load-time rules of an approval step's policy. It comes from the flow and the project, never from
 * the request: a template there may read `project` only. Literal values must be valid, and a
 * literal list of emails must be able to meet a literal quorum.
 */
export function approvalPolicyProblems(w: Record<string, unknown>): { key: string; message: string }[] {
  const problems: { key: string; message: string }[] = [];
  const shape = stepInputs.approval.shape;
  for (const key of POLICY_FIELDS) {
    if (!(key in w)) continue;
    const expressions = templateExpressions(w[key]);
    const chosen = expressions.find((e) => REQUEST_CHOSEN.test(e));
    if (chosen) {
      problems.push({ key, message: `the approval policy may not come from the request ("{{ ${chosen} }}"): name approvers as emails, "owners" or "group:<name>" (groups are defined on the project), and quorum and allowSelfApproval as values` });
    } else if (!expressions.length) {
      const parsed = shape[key].safeParse(w[key]);
      if (!parsed.success) problems.push({ key, message: parsed.error.issues.map((i) => i.message).join('; ') });
    }
  }
  const { approvers, quorum } = w;
  if (Array.isArray(approvers) && approvers.every((a) => typeof a === 'string' && a.includes('@')) && typeof quorum === 'number') {
    const distinct = new Set(approvers.map((a) => (a as string).toLowerCase())).size;
    if (quorum > distinct) problems.push({ key: 'quorum', message: `quorum ${quorum} can never be reached with ${distinct} approver(s)` });
  }
  return problems;
}
