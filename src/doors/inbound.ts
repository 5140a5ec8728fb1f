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

/**
 * Accepts a delivery for processing unless it was seen before. A delivery is marked done only
 * after it was processed; redelivering one that failed processes it again.
 */
export async function acceptDelivery(door: string, deliveryId: string, payload: unknown): Promise<'accepted' | 'duplicate'> {
  const { orm } = state!;
  const rows = await orm.em.fork().getConnection().execute<{ attempts: number }[]>(
    `insert into inbound_deliveries (door, delivery_id, status) values (?, ?, 'processing')
     on conflict (door, delivery_id) do update set status = 'processing', attempts = inbound_deliveries.attempts + 1, error = null, updated_at = now()
       where inbound_deliveries.status = 'failed'
     returning attempts`, [door, deliveryId]);
  if (!rows.length) return 'duplicate';
  await DBOS.startWorkflow(processInbound, { workflowID: `inbound:${door}:${deliveryId}:${rows[0].attempts}` })(door, deliveryId, payload);
  return 'accepted';
}

/** How a delivery stands (tests and diagnostics). */
export async function deliveryStatus(orm: MikroORM, door: string, deliveryId: string): Promise<{ status: string; attempts: number; error: string | null } | null> {
  const rows = await orm.em.fork().getConnection().execute<{ status: string; attempts: number; error: string | null }[]>(
    'select status, attempts, error from inbound_deliveries where door = ? and delivery_id = ?', [door, deliveryId]);
  return rows[0] ?? null;
}
