import { DBOS } from '@dbos-inc/dbos-sdk';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

/**
 * Processes what a door received, after the HTTP answer, durably. Runs in workflow context:
 * wrap I/O that must not repeat in `DBOS.runStep`, and give anything it starts a deterministic
 * id (e.g. `idFrom(deliveryId)`), since a recovered delivery runs again from its last checkpoint.
 */
export type InboundHandler = (payload: unknown, deliveryId: string) => Promise<void>;

const handlers = new Map<string, InboundHandler>();
let state: { orm: MikroORM; log: Logger } | undefined;

export function setInboundDeps(orm: MikroORM, log: Logger): void {
  state = { orm, log };
}

/** A door names the function that processes its deliveries (before the engine launches). */
export function registerInboundHandler(door: string, handler: InboundHandler): void {
  handlers.set(door, handler);
}

async function processImpl(door: string, deliveryId: string, payload: unknown): Promise<void> {
  const { orm, log } = state!;
  const handler = handlers.get(door);
  try {
    if (!handler) throw new Error(`no handler for ${door} deliveries`);
    await handler(payload, deliveryId);
    await DBOS.runStep(() => mark(orm, door, deliveryId, 'done', null), { name: 'done' });
  } catch (err) {
    if ((err as Error)?.name === 'DBOSWorkflowCancelledError') throw err;
    log.warn({ err, door, deliveryId }, 'processing an inbound delivery failed');
    await DBOS.runStep(() => mark(orm, door, deliveryId, 'failed', String((err as Error)?.message ?? err)), { name: 'failed' });
  }
}

const processInbound = DBOS.registerWorkflow(processImpl, { name: 'flowgate.inbound' });

async function mark(orm: MikroORM, door: string, id: string, status: 'done' | 'failed', error: string | null) {
  await orm.em.fork().getConnection().execute(
    'update inbound_deliveries set status = ?, error = ?, updated_at = now() where door = ? and delivery_id = ?', [status, error, door, id]);
}

/** A delivery `processing` for longer than this with no live workflow was dropped by a crash. */
export const DELIVERY_LEASE_MS = 2 * 60_000;
const ACTIVE_WORKFLOW = new Set(['PENDING', 'ENQUEUED', 'DELAYED']);
const workflowIdOf = (door: string, deliveryId: string, attempts: number) => `inbound:${door}:${deliveryId}:${attempts}`;

/**
 * Accepts a delivery for processing unless it was seen before. A delivery is marked done only
 * after it was processed; redelivering one that failed processes it again, and so does
 * redelivering one a crash left `processing` (see `retake`). What the door accepted is kept with
 * the delivery, so the sweep can process it again without a redelivery.
 */
export async function acceptDelivery(door: string, deliveryId: string, payload: unknown): Promise<'accepted' | 'duplicate'> {
  const { orm } = state!;
  const kept = JSON.stringify(payload ?? null);
  const rows = await orm.em.fork().getConnection().execute<{ attempts: number }[]>(
    `insert into inbound_deliveries (door, delivery_id, status, payload) values (?, ?, 'processing', ?::jsonb)
     on conflict (door, delivery_id) do update set status = 'processing', attempts = inbound_deliveries.attempts + 1, error = null, updated_at = now(),
       payload = excluded.payload
       where inbound_deliveries.status = 'failed'
     returning attempts`, [door, deliveryId, kept]);
  if (rows.length) {
    await DBOS.startWorkflow(processInbound, { workflowID: workflowIdOf(door, deliveryId, rows[0].attempts) })(door, deliveryId, payload);
    return 'accepted';
  }
  return (await retake(door, deliveryId, payload)) ? 'accepted' : 'duplicate';
}

/**
 * Processes again a delivery left `processing` past its lease whose workflow is not alive (never
 * started, or ended without marking it): the crash between recording and starting loses nothing.
 * A workflow still pending is left to the engine's recovery. Replicas racing here start one
 * workflow: the attempt counter moves once.
 */
async function retake(door: string, deliveryId: string, payload: unknown): Promise<boolean> {
  const { orm } = state!;
  const conn = orm.em.fork().getConnection();
  const [row] = await conn.execute<{ attempts: number }[]>(
    `select attempts from inbound_deliveries where door = ? and delivery_id = ? and status = 'processing' and updated_at < ?`,
    [door, deliveryId, new Date(Date.now() - DELIVERY_LEASE_MS)]);
  if (!row) return false;
  const previous = await DBOS.getWorkflowStatus(workflowIdOf(door, deliveryId, row.attempts));
  if (previous && ACTIVE_WORKFLOW.has(previous.status)) return false;
  const taken = await conn.execute<{ attempts: number }[]>(
    `update inbound_deliveries set attempts = attempts + 1, updated_at = now(), payload = ?::jsonb
     where door = ? and delivery_id = ? and status = 'processing' and attempts = ? returning attempts`,
    [JSON.stringify(payload ?? null), door, deliveryId, row.attempts]);
  if (!taken.length) return false;
  state!.log.warn({ door, deliveryId, attempt: taken[0].attempts }, 'a delivery left processing was taken up again');
  await DBOS.startWorkflow(processInbound, { workflowID: workflowIdOf(door, deliveryId, taken[0].attempts) })(door, deliveryId, payload);
  return true;
}

/** The sweep: deliveries a crash left `processing` (and kept what the door accepted) are processed again. */
export async function retakeStalledDeliveries(limit = 100): Promise<number> {
  if (!state) return 0;
  const rows = await state.orm.em.fork().getConnection().execute<{ door: string; delivery_id: string; payload: unknown }[]>(
    `select door, delivery_id, payload from inbound_deliveries where status = 'processing' and updated_at < ? and payload is not null
     order by updated_at limit ?`, [new Date(Date.now() - DELIVERY_LEASE_MS), limit]);
  let retaken = 0;
  for (const r of rows) {
    if (await retake(r.door, r.delivery_id, r.payload)) retaken += 1;
  }
  return retaken;
}

/** How a delivery stands (tests and diagnostics). */
export async function deliveryStatus(orm: MikroORM, door: string, deliveryId: string): Promise<{ status: string; attempts: number; error: string | null } | null> {
  const rows = await orm.em.fork().getConnection().execute<{ status: string; attempts: number; error: string | null }[]>(
    'select status, attempts, error from inbound_deliveries where door = ? and delivery_id = ?', [door, deliveryId]);
  return rows[0] ?? null;
}
