import { createHash } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Services } from '../../container.js';
import { parseComment } from '../commands.js';
import { acceptDelivery } from '../inbound.js';
import { routeEvent, type InboundEvent, type IssueEvent, type IssueRequest } from './events.js';
import { BodyTooLarge, readRaw } from '../../http/body.js';
import { SIGNATURE_HEADER, verifySignature } from './verify.js';

export const WEBHOOK_PATH = '/github/webhooks';
/** GitHub caps deliveries at 25 MB; issue and comment events are far smaller. */
const LIMIT = 5 * 1024 * 1024;


const answer = (ctx: Context, status: number, body: Record<string, unknown>) => {
  ctx.status = status;
  ctx.body = body;
};

/**
 * `POST /github/webhooks`: verify the signature over the raw bytes (nothing happens before), read
 * the event, hand what needs doing to durable processing (deduplicated), answer 202 at once.
 */
export function mountWebhook(router: Router, s: Services, secrets: readonly string[]): void {
  router.post(WEBHOOK_PATH, async (ctx) => {
    let raw: Buffer;
    try {
      raw = await readRaw(ctx, LIMIT);
    } catch (err) {
      if (err instanceof BodyTooLarge) return answer(ctx, 413, { error: `Delivery larger than ${LIMIT} bytes` });
      throw err;
    }
    if (!verifySignature(raw, ctx.get(SIGNATURE_HEADER) || undefined, secrets))
      return answer(ctx, 401, { error: `Missing or invalid ${SIGNATURE_HEADER}: deliveries must be signed with the app's webhook secret` });
    const name = ctx.get('x-github-event');
    const deliveryId = ctx.get('x-github-delivery');
    if (!name || !deliveryId) return answer(ctx, 400, { error: 'X-GitHub-Event and X-GitHub-Delivery are required' });
    let payload: unknown;
    try {
      payload = JSON.parse(raw.toString('utf8'));
    } catch {
      return answer(ctx, 400, { error: 'The delivery is not JSON: configure the app\'s webhook with content type application/json' });
    }
    const log = s.log.child({ door: 'github', deliveryId, event: name });
    if (name === 'ping') return answer(ctx, 200, { pong: true });
    try {
      const work = await toProcess(s, routeEvent(name, payload));
      if ('ignored' in work) return answer(ctx, 202, { ignored: work.ignored });
      const outcomes = [];
      for (const item of work.items) outcomes.push(await acceptDelivery('github', item.key, item.event));
      log.debug({ outcomes }, 'delivery accepted');
      answer(ctx, 202, { accepted: outcomes.filter((o) => o === 'accepted').length, duplicate: outcomes.filter((o) => o === 'duplicate').length });
    } catch (err) {
      log.error({ err }, 'accepting a GitHub delivery');
      answer(ctx, 500, { error: 'The delivery could not be accepted; redeliver it' });
    }
  });
}

type Work = { items: { key: string; event: InboundEvent }[] } | { ignored: string };

/**
 * What a delivery asks for, each under a key taken from the signed body — never from the unsigned
 * `X-GitHub-Delivery` header, so a captured body replayed with a fresh delivery id is a duplicate.
 * A comment is keyed by its id (edits are not acted on, so one comment acts at most once). An
 * issue label that its project maps to a flow type is keyed by issue, label and body, since GitHub
 * sends both `opened` and `labeled` for a label set when the issue is created. Run ids derive
 * from these keys.
 */
async function toProcess(s: Services, routed: ReturnType<typeof routeEvent>): Promise<Work> {
  if ('ignored' in routed) return routed;
  const e = routed.event;
  if (e.kind === 'comment') {
    // Ordinary discussion never becomes work: only a line starting with a command does.
    if (parseComment(e.body).kind === 'ignore') return { ignored: 'no command in the comment' };
    return { items: [{ key: commentKey(e.commentId), event: e }] };
  }
  const flows = (await s.projects.find(e.repositoryIdentifier))?.settings.labelFlows ?? {};
  const labels = e.labels.filter((l) => flows[l]);
  if (!labels.length) return { ignored: `no label maps to a flow type in ${e.repositoryIdentifier}` };
  return { items: labels.map((label) => ({ key: requestKey(e, label), event: issueRequest(e, label) })) };
}

function issueRequest(e: IssueEvent, label: string): IssueRequest {
  const { kind: _kind, labels: _labels, ...rest } = e;
  return { ...rest, kind: 'issue-request', label };
}

/** The inbound key of a comment command (also what its run id derives from). */
export const commentKey = (commentId: number) => `comment:${commentId}`;

const requestKey = (e: IssueEvent, label: string) =>
  `issue:${e.repositoryIdentifier}#${e.issueNumber}:${label}:${createHash('sha256').update(e.body).digest('hex').slice(0, 16)}`;
