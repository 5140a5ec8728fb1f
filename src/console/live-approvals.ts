import type { Services } from '../container.js';
import type { Principal } from '../core/identity/principal.js';
import { sql } from '../db/sql.js';
import type { EventStream } from './sse.js';

const POLL_MS = 1_000;
/** Audit rows may commit a little out of time order (several writers): each poll looks back this far, and ids seen are skipped. */
const LOOK_BACK_MS = 5_000;

interface Change { id: string; approval_id: string; action: string; door: string; repository_identifier: string | null; approvers: string[] | null; at: string }

interface Subscriber { stream: EventStream; principal: Principal; email: string | null }

/**
 * Tells open console pages that an approval changed (a vote, a decision, expiry, cancellation) from
 * any door or replica: one poll of the audit trail per process while someone listens, each change
 * sent only to pages whose viewer may see that approval. The page then fetches the card itself.
 */
export class LiveApprovals {
  private readonly subscribers = new Set<Subscriber>();
  private timer?: NodeJS.Timeout;
  private cursor = new Date(Date.now() - LOOK_BACK_MS);
  private seen = new Map<string, number>();

  constructor(private readonly s: Services) {}

  subscribe(stream: EventStream, principal: Principal, email: string | null): void {
    const sub = { stream, principal, email: email?.toLowerCase() ?? null };
    this.subscribers.add(sub);
    stream.onClose(() => {
      this.subscribers.delete(sub);
      if (!this.subscribers.size) this.stop();
    });
    this.timer ??= setInterval(() => void this.poll().catch((err) => this.s.log.warn({ err }, 'reading approval changes for the console failed')), POLL_MS);
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    const since = new Date(this.cursor.getTime() - LOOK_BACK_MS);
    const rows = await sql<Change>(this.s.orm, `select e.id, a.id as approval_id, e.action, e.door, a.repository_identifier,
        case when jsonb_typeof(a.approvers) = 'array' then array(select lower(x) from jsonb_array_elements_text(a.approvers) x) end as approvers, e.at
      from audit_events e join approvals a on a.id::text = e.target_id
      where e.target_type = 'approval' and e.at > ? order by e.at limit 500`, [since]);
    const now = Date.now();
    for (const [id, at] of this.seen) if (at < now - 4 * LOOK_BACK_MS) this.seen.delete(id);
    for (const r of rows) {
      if (this.seen.has(r.id)) continue;
      this.seen.set(r.id, now);
      const at = new Date(r.at);
      if (at > this.cursor) this.cursor = at;
      for (const sub of this.subscribers) {
        const p = sub.principal;
        const visible = p.projects === null || (r.repository_identifier !== null && p.projects.includes(r.repository_identifier))
          || (sub.email !== null && (r.approvers ?? []).includes(sub.email));
        if (visible) sub.stream.send('approval', { id: r.approval_id, action: r.action, door: r.door }, r.id);
      }
    }
  }
}
