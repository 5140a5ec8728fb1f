import { z } from 'zod';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';
import { send, type Answer } from './outbound.js';
import { inputOf, plugin } from './plugin.js';

const account = {
  site: z.url({ protocol: /^https?$/, error: 'the Jira site, e.g. https://acme.atlassian.net' }),
  email: z.email(),
  apiToken: z.string().min(1),
};

/** A call to Jira's REST API v3 with basic auth (email and API token); a 4xx is final, naming Jira's message. */
async function jira(c: KindCall, a: { site: string; email: string; apiToken: string }, method: string, path: string, body?: unknown): Promise<Answer> {
  const answer = await send(c, `${a.site.replace(/\/+$/, '')}/rest/api/3/${path}`, {
    method, timeoutSeconds: 30,
    headers: { authorization: `Basic ${Buffer.from(`${a.email}:${a.apiToken}`).toString('base64')}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (answer.status >= 200 && answer.status < 300) return answer;
  const said = answer.body as { errorMessages?: string[]; errors?: Record<string, string> } | null;
  const why = [...(said?.errorMessages ?? []), ...Object.entries(said?.errors ?? {}).map(([k, v]) => `${k}: ${v}`)].join('; ');
  throw new StepFailure(`Jira ${method} ${path}: HTTP ${answer.status}${why ? `: ${why}` : ''}`, answer.status >= 500 || answer.status === 429);
}

/** Plain text as Atlassian Document Format, one paragraph per line. */
const adf = (text: string) => ({ type: 'doc', version: 1, content: text.split('\n').map((line) => ({ type: 'paragraph', content: line ? [{ type: 'text', text: line }] : [] })) });

const issueInput = z.strictObject({ ...account, project: z.string().min(1), type: z.string().min(1).default('Task'), summary: z.string().min(1).max(255), description: z.string().optional(), labels: z.array(z.string()).optional() });
export const jiraIssue = plugin({
  id: 'jira.issue', name: 'Jira issue', category: 'saas',
  description: 'Creates a Jira issue (REST API v3, an account email and API token as credentials): `{key, url}`.',
  input: issueInput, output: z.object({ key: z.string(), url: z.string() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, issueInput, { credentials: true, url: true });
    const a = await jira(c, i, 'POST', 'issue', {
      fields: { project: { key: i.project }, issuetype: { name: i.type }, summary: i.summary, ...(i.description ? { description: adf(i.description) } : {}), ...(i.labels ? { labels: i.labels } : {}) },
    });
    const key = (a.body as { key?: unknown })?.key;
    if (typeof key !== 'string') throw new StepFailure('Jira answered without an issue key', false);
    return { key, url: `${i.site.replace(/\/+$/, '')}/browse/${key}` };
  },
});

const transitionInput = z.strictObject({ ...account, issue: z.string().regex(/^[A-Z][A-Z0-9_]*-\d+$/, 'an issue key like OPS-12'), transition: z.string().min(1) });
export const jiraTransition = plugin({
  id: 'jira.transition', name: 'Jira transition', category: 'saas',
  description: 'Moves a Jira issue through a workflow transition, named by its id or its name (as the issue offers it now).',
  input: transitionInput, output: z.object({ transitionId: z.string() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, transitionInput, { credentials: true, url: true });
    const offered = ((await jira(c, i, 'GET', `issue/${i.issue}/transitions`)).body as { transitions?: { id: string; name: string }[] })?.transitions ?? [];
    const t = offered.find((x) => x.id === i.transition) ?? offered.find((x) => x.name.toLowerCase() === i.transition.toLowerCase());
    if (!t) throw new StepFailure(`issue ${i.issue} offers no transition "${i.transition}" (it offers: ${offered.map((x) => x.name).join(', ') || 'none'})`, false);
    await jira(c, i, 'POST', `issue/${i.issue}/transitions`, { transition: { id: t.id } });
    return { transitionId: t.id };
  },
});

export const JIRA = [jiraIssue, jiraTransition];
