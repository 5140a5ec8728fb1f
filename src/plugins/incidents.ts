import { z } from 'zod';
import { StepFailure } from '../engine/step-failure.js';
import { requireOk, send } from './outbound.js';
import { inputOf, plugin } from './plugin.js';

const pagerdutyInput = z.strictObject({
  routingKey: z.string().min(1), action: z.enum(['trigger', 'acknowledge', 'resolve']).default('trigger'),
  summary: z.string().min(1).max(1024).optional(), severity: z.enum(['critical', 'error', 'warning', 'info']).default('error'),
  source: z.string().min(1).default('flowgate'), dedupKey: z.string().min(1).max(255).optional(), details: z.record(z.string(), z.unknown()).optional(),
}).refine((i) => i.action !== 'trigger' || i.summary, { message: 'a trigger needs a summary', path: ['summary'] })
  .refine((i) => i.action === 'trigger' || i.dedupKey, { message: 'acknowledge and resolve name the incident by dedupKey', path: ['dedupKey'] });
export const pagerdutyEvent = plugin({
  id: 'pagerduty.event', name: 'PagerDuty event', category: 'saas',
  description: 'Sends a PagerDuty Events API v2 event (trigger, acknowledge or resolve) with the service\'s routing key (a credential); `{dedupKey}` names the incident for a later acknowledge or resolve. PAGERDUTY_EVENTS_URL sets the endpoint.',
  input: pagerdutyInput, output: z.object({ dedupKey: z.string() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, pagerdutyInput, { credentials: true, url: true });
    const body = {
      routing_key: i.routingKey, event_action: i.action, ...(i.dedupKey ? { dedup_key: i.dedupKey } : {}),
      ...(i.action === 'trigger' ? { payload: { summary: i.summary, source: i.source, severity: i.severity, ...(i.details ? { custom_details: i.details } : {}) } } : {}),
    };
    const a = await send(c, c.extra.incidentApis.pagerdutyEventsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeoutSeconds: 30 });
    // A refused event (400: a bad routing key or payload) does not get better by retrying.
    if (a.status === 400) throw new StepFailure(`PagerDuty refused the event: ${JSON.stringify(a.body).slice(0, 300)}`, false);
    requireOk(a, 'PagerDuty event');
    const dedupKey = (a.body as { dedup_key?: unknown })?.dedup_key;
    if (typeof dedupKey !== 'string') throw new StepFailure('PagerDuty answered without a dedup_key', false);
    return { dedupKey };
  },
});

const opsgenieInput = z.strictObject({
  apiKey: z.string().min(1), action: z.enum(['create', 'close']).default('create'), alias: z.string().min(1).max(512),
  message: z.string().min(1).max(130).optional(), priority: z.enum(['P1', 'P2', 'P3', 'P4', 'P5']).default('P3'), description: z.string().max(15_000).optional(),
}).refine((i) => i.action !== 'create' || i.message, { message: 'create needs a message', path: ['message'] });
export const opsgenieAlert = plugin({
  id: 'opsgenie.alert', name: 'Opsgenie alert', category: 'saas',
  description: 'Creates or closes an Opsgenie alert by its alias, with an API integration key (a credential): `{requestId}`. OPSGENIE_API_URL sets the API (EU accounts).',
  input: opsgenieInput, output: z.object({ requestId: z.string() }), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, opsgenieInput, { credentials: true, url: true });
    const base = c.extra.incidentApis.opsgenieApiUrl;
    const url = i.action === 'create' ? `${base}/v2/alerts` : `${base}/v2/alerts/${encodeURIComponent(i.alias)}/close?identifierType=alias`;
    const body = i.action === 'create' ? { message: i.message, alias: i.alias, priority: i.priority, ...(i.description ? { description: i.description } : {}) } : { source: 'flowgate' };
    const a = await send(c, url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `GenieKey ${i.apiKey}` }, body: JSON.stringify(body), timeoutSeconds: 30 });
    if (a.status >= 400 && a.status < 500 && a.status !== 429) throw new StepFailure(`Opsgenie refused the ${i.action}: HTTP ${a.status}`, false);
    requireOk(a, `Opsgenie ${i.action}`);
    const requestId = (a.body as { requestId?: unknown })?.requestId;
    if (typeof requestId !== 'string') throw new StepFailure('Opsgenie answered without a requestId', false);
    return { requestId };
  },
});

const teamsInput = z.strictObject({ webhookUrl: z.url({ protocol: /^https?$/ }), text: z.string().min(1).max(28_000), title: z.string().max(200).optional() });
export const teamsMessage = plugin({
  id: 'teams.message', name: 'Microsoft Teams message', category: 'protocol',
  description: 'Posts a message to a Microsoft Teams channel through its incoming webhook URL (a credential).',
  input: teamsInput, output: z.object({}), credentials: true, effectful: true,
  run: async (c) => {
    const i = inputOf(c, teamsInput, { credentials: true, url: true });
    const a = await send(c, i.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...(i.title ? { title: i.title } : {}), text: i.text }), timeoutSeconds: 30 });
    if (a.status >= 400 && a.status < 500 && a.status !== 429) throw new StepFailure(`Teams refused the message: HTTP ${a.status}`, false);
    requireOk(a, 'Teams message');
    return {};
  },
});

export const INCIDENTS = [pagerdutyEvent, opsgenieAlert, teamsMessage];
