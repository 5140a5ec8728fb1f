import type { IncomingHttpHeaders } from 'node:http';
import { notFound, unauthenticated } from '../../errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import { executeFlow } from '../flows/execute-flow.js';
import { newId } from '../ids.js';
import type { ProjectService } from '../projects/projects.js';
import type { RunService } from '../runs/run-service.js';
import { verifyHubSignature } from '../signing.js';
import { inputsOf, type TriggerScope } from './trigger-inputs.js';
import type { TriggerStore, WebhookTarget } from './trigger-store.js';
import { webhookStarter } from './trigger.js';
import { keyDigest } from './webhook-key.js';
import { deliveryKeyOf, parseBody, shownHeaders, signatureOf } from './webhook-request.js';

/** Unknown, disabled and deleted keys all get this one answer. */
export const webhookNotFound = () => notFound('webhook not found');

/** One request to a webhook trigger, as read off the wire (the body's exact bytes, for the signature). */
export interface WebhookRequest {
  raw: Buffer;
  contentType?: string;
  headers: IncomingHttpHeaders;
  query: Record<string, unknown>;
  ip: string;
}

export type WebhookOutcome =
  | { repeated: false; executionId: string; tasksTotal: number }
  | { repeated: true; executionId: string };

/**
 * The public webhook endpoint's rules: find the trigger by its key's digest, count the request
 * against its per-minute limit, check the signature when it has a secret (refusals audited), then
 * start an execution once per delivery key within 24 h.
 */
export class WebhookReceiver {
  constructor(
    private readonly store: TriggerStore,
    private readonly runs: RunService,
    private readonly projects: ProjectService,
    private readonly audit: AuditLog,
  ) {}

  /** The enabled trigger of this key, or null: the same single indexed read for any key. */
  target(key: string): Promise<WebhookTarget | null> {
    return this.store.webhookTarget(keyDigest(key));
  }

  /** Counts the request; the seconds to wait when it is over the trigger's limit, else null. */
  async admit(t: WebhookTarget): Promise<number | null> {
    const count = await this.store.countRequest(t.id);
    if (!count) throw webhookNotFound();
    return count.hits > t.rateLimitPerMinute ? Math.max(1, count.secondsLeft) : null;
  }

  async deliver(t: WebhookTarget, req: WebhookRequest): Promise<WebhookOutcome> {
    if (t.secret !== null) await this.requireSignature(t, req);
    const body = parseBody(req.raw, req.contentType);
    if (!t.flowType) throw webhookNotFound();
    const key = deliveryKeyOf(req.headers);
    let id: string | undefined;
    if (key) {
      const claim = await this.store.claimDelivery(t.id, keyDigest(key), newId());
      if (!claim) throw webhookNotFound();
      if (!claim.fresh) return { repeated: true, executionId: claim.executionId };
      id = claim.executionId;
    }
    try {
      const trigger: TriggerScope = { type: 'webhook', triggerId: t.id, by: t.updatedBy, body, headers: shownHeaders(req.headers), query: req.query };
      const inputs = inputsOf(t.inputs, trigger);
      const project = await this.projects.get(t.repositoryIdentifier);
      const starter = webhookStarter(t.id);
      const { run, tasksTotal } = await executeFlow(this.runs, { flowType: t.flowType, project }, inputs, {
        triggeredBy: starter, requestedBy: t.updatedBy, actor: { name: starter, door: 'webhook' }, id, trigger,
      });
      await this.store.webhookFired(t.id);
      return { repeated: false, executionId: run.id, tasksTotal };
    } catch (err) {
      // Nothing started: a corrected redelivery under the same key may.
      if (key && id) await this.store.releaseDelivery(t.id, keyDigest(key), id);
      throw err;
    }
  }

  /** `X-Signature-256` (or `X-Hub-Signature-256`): `sha256=<hex HMAC-SHA256(secret, raw body)>`, compared in constant time. */
  private async requireSignature(t: WebhookTarget, req: WebhookRequest): Promise<void> {
    const given = signatureOf(req.headers);
    if (verifyHubSignature(req.raw, given, [t.secret!])) return;
    await this.audit.record({ name: 'anonymous', door: 'webhook' }, 'webhook.refused', 'trigger', t.id, { reason: given ? 'signature does not match' : 'signature missing', ip: req.ip });
    throw unauthenticated('Missing or invalid signature: send X-Signature-256: sha256=<hex HMAC-SHA256 of the body with the trigger\'s secret>');
  }
}
