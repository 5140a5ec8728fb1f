import { z } from 'zod';
import type { CicdProvider } from '../core/cicd/dispatcher.js';
import { mentionsCredentials, templateExpressions } from '../core/expressions/templates.js';
import { idFrom } from '../core/ids.js';
import { cicdTargetSchema } from '../core/registry/cicd-target.js';
import { isTerminalRun } from '../core/status.js';
import { StepFailure } from '../engine/step-failure.js';
import { Park, type KindCall } from '../executor/kinds.js';
import { inputOf, plugin } from './plugin.js';

type Problem = { key: string; message: string };
const PROVIDERS = cicdTargetSchema.shape.provider;
/** The key each provider needs, and the keys only one provider reads. */
const NEEDS: Record<CicdProvider, string | undefined> = { webhook: undefined, 'github-actions': 'workflow', 'azure-pipelines': 'pipeline' };
const ONLY_FOR: Record<string, CicdProvider> = { workflow: 'github-actions', pipeline: 'azure-pipelines', url: 'webhook' };
/** A waiting step looks at its pipeline run this often even without a wake-up (its end wakes the run). */
const RECHECK_MS = 60_000;

const isTemplate = (v: unknown) => typeof v === 'string' && v.includes('{{');

/** What a target needs beyond each key's own type; `has` says whether a key is given. */
function targetProblems(provider: CicdProvider, has: (key: string) => boolean, pipeline: unknown): Problem[] {
  const problems: Problem[] = [];
  const needed = NEEDS[provider];
  if (needed && !has(needed)) problems.push({ key: needed, message: `required for provider ${provider}` });
  for (const [key, only] of Object.entries(ONLY_FOR)) {
    if (has(key) && only !== provider) problems.push({ key, message: `only for provider ${only}, not ${provider}` });
  }
  const id = typeof pipeline === 'number' ? pipeline : typeof pipeline === 'string' && /^\s*\d+\s*$/.test(pipeline) ? Number(pipeline) : NaN;
  if (pipeline !== undefined && !isTemplate(pipeline) && !(Number.isInteger(id) && id > 0)) problems.push({ key: 'pipeline', message: 'the numeric id of the Azure Pipelines pipeline' });
  return problems;
}

const input = cicdTargetSchema.extend({
  inputs: z.record(z.string(), z.unknown()).default({}),
  timeoutSeconds: z.number().int().min(1).max(7 * 86_400).default(3 * 3_600),
}).superRefine((i, ctx) => {
  for (const p of targetProblems(i.provider, (k) => i[k as keyof typeof i] !== undefined, i.pipeline)) ctx.addIssue({ code: 'custom', path: [p.key], message: p.message });
});
type Input = z.infer<typeof input>;

const output = z.object({
  runId: z.string(), provider: PROVIDERS, status: z.enum(['completed', 'partial']),
  cicdRunId: z.string().nullable(), cicdRunUrl: z.string().nullable(), result: z.record(z.string(), z.unknown()),
});

/** What a waiting step remembers: its pipeline run (as `children`, so run control cancels it with the step) and its time limit. */
interface PipelineWait { children: { id: string; taskType: string }[]; provider: CicdProvider; seconds: number; until: string }

/**
 * The step's input; `url` is taken as written: the dispatcher resolves its `{{ credentials.X }}`
 * when it sends, as for a manifest's `cicd.url`, so no credential is ever stored with the run.
 */
function inputFrom(c: KindCall): Input {
  const { url, ...rest } = c.step.with;
  const rendered = inputOf({ ...c, step: { ...c.step, with: rest } }, z.record(z.string(), z.unknown()));
  const parsed = input.safeParse(url === undefined ? rendered : { ...rendered, url });
  if (!parsed.success) {
    throw new StepFailure(`invalid input for ${c.step.type} step: ${parsed.error.issues.map((i) => `with.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, false);
  }
  return parsed.data;
}

/** Records the pipeline run and starts its dispatch; once per attempt of the step (its id is derived from them). */
async function dispatch(c: KindCall): Promise<PipelineWait> {
  const { inputs, timeoutSeconds, ...target } = inputFrom(c);
  const started = await c.extra.pipelines.start({
    id: idFrom(`${c.run.id}/${c.step.ref}/${c.attempt}`), parent: c.run, requestedBy: c.extra.requestedBy, stepRef: c.step.ref, target, payload: inputs,
  });
  if ('refused' in started) throw new StepFailure(started.refused, false);
  // (A webhook URL is not shown: it may carry a credential.)
  const what = target.workflow ?? target.pipeline;
  c.note('info', `Pipeline run ${started.run.id} dispatched to ${target.provider}${what !== undefined ? ` (${what})` : ''}`);
  if (started.notDispatchedYet) c.note('warn', `Its dispatch could not be started now (${started.notDispatchedYet}); it is started again shortly`);
  const until = Math.min(Date.now() + timeoutSeconds * 1000, c.deadline ?? Infinity);
  return {
    children: [{ id: started.run.id, taskType: started.run.taskType }], provider: target.provider,
    seconds: Math.round((until - Date.now()) / 1000), until: new Date(until).toISOString(),
  };
}

export const cicdRun = plugin({
  id: 'cicd.run', name: 'CI/CD pipeline run', category: 'core',
  description: 'Dispatches a pipeline as a cicd flow type\'s run is dispatched (its own execution token and status URL) and waits for its report; the run is released meanwhile. '
    + '`provider`: `webhook` (signed POST to `url`, which may use only `{{ credentials.X }}`, else FLOWGATE_CICD_WEBHOOK_URL), `github-actions` (`workflow` of the execution\'s project repository) '
    + 'or `azure-pipelines` (`pipeline` id in its project); `ref` the branch, `inputs` the pipeline\'s payload. The pipeline is a child run of type `<flow>.<step>`; cancelling the run cancels it. '
    + 'Output: `{runId, provider, status, cicdRunId, cicdRunUrl, result}` (`result`: what the pipeline reported). A failed or cancelled pipeline, or none within `timeoutSeconds` (default 3 hours; the pipeline is then cancelled), fails the step.',
  input, output, credentials: true, effectful: true,
  checkStep: (step) => {
    const w = step.with;
    const problems: Problem[] = [];
    for (const [key, value] of Object.entries(w)) {
      if (key === 'url') {
        if (templateExpressions(value).some((e) => !/^\s*credentials\.[A-Za-z_][A-Za-z0-9_]*\s*$/.test(e)))
          problems.push({ key, message: 'may use only {{ credentials.NAME }} templates (resolved when the pipeline is dispatched)' });
      } else if (mentionsCredentials(value)) {
        problems.push({ key, message: 'credentials may only be used in url (resolved when the pipeline is dispatched)' });
      }
    }
    // What a template gives is checked when the step runs; what is written here, now.
    if (typeof w.provider === 'string' && !isTemplate(w.provider)) {
      const provider = PROVIDERS.safeParse(w.provider);
      if (!provider.success) problems.push({ key: 'provider', message: provider.error.issues[0].message });
      else problems.push(...targetProblems(provider.data, (k) => w[k] !== undefined, w.pipeline));
    }
    return problems;
  },
  run: async (c) => {
    const remembered = c.prior?.status === 'waiting' ? (c.prior.output as PipelineWait | null) : null;
    const wait = remembered?.children?.length ? remembered : await dispatch(c);
    const { id } = wait.children[0];
    const child = c.children.find((k) => k.id === id);
    if (!child || !isTerminalRun(child.status)) {
      const until = Date.parse(wait.until);
      if (Date.now() < until) throw new Park(Math.min(until, Date.now() + RECHECK_MS), `pipeline:${id}`, 'waiting', wait);
      if (await c.extra.pipelines.cancel(id, `cancelled: step ${c.step.ref} timed out`))
        throw new StepFailure(`pipeline run ${id} (${wait.provider}) did not finish within ${wait.seconds}s; it was cancelled`, false);
      // It ended meanwhile: its end decides.
    }
    const run = await c.extra.pipelines.get(id);
    if (!run) throw new StepFailure(`pipeline run ${id} is gone`, false);
    const where = [run.cicdRunId && `${wait.provider} run ${run.cicdRunId}`, run.cicdRunUrl].filter(Boolean).join(': ');
    if (run.status === 'completed' || run.status === 'partial') {
      c.note('info', `Pipeline run ${id} ${run.status}${where ? ` (${where})` : ''}`);
      return { runId: id, provider: wait.provider, status: run.status, cicdRunId: run.cicdRunId ?? null, cicdRunUrl: run.cicdRunUrl ?? null, result: run.result ?? {} };
    }
    // A failed pipeline may be run again by the step's retry; a cancelled one was stopped on purpose.
    throw new StepFailure(`pipeline run ${id} on ${wait.provider}${where ? ` (${where})` : ''} ended ${run.status}${run.error ? `: ${run.error}` : ''}`, run.status === 'failed');
  },
});
