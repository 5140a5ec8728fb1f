import { AsyncLocalStorage } from 'node:async_hooks';
import { DBOS } from '@dbos-inc/dbos-sdk';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { z } from 'zod';
import { sql } from '../db/sql.js';
import { outsideWorkflow } from '../engine/outside-workflow.js';

/**
 * Processes what a door received, after the HTTP answer, in this process. `inbound_deliveries` is
 * the durable queue: a delivery is recorded before the door answers, processed right after, and
 * taken up again by the sweep when a crash left it `processing`. Handlers are idempotent: wrap
 * I/O that must not repeat in `step` (its result is recorded with the delivery and returned, not
 * run again, when the delivery is processed again), and give anything they start a deterministic
 * id (e.g. `idFrom(deliveryId)`).
 */
export type InboundHandler = (payload: unknown, deliveryId: string) => Promise<void>;

/** The delivery was taken over by another process (its lease had run out): this one stops. */
export class DeliveryTakenOver extends Error {
  constructor(readonly door: string, readonly deliveryId: string) {
    super(`delivery ${door}/${deliveryId} was taken over by another process`);
    this.name = 'DeliveryTakenOver';
  }
}

/** Processed again, the handler asked for its steps in another order than recorded: not replayable. */
export class DeliveryReplayMismatch extends Error {
  constructor(readonly deliveryId: string, position: number, recorded: string, asked: string) {
    super(`delivery ${deliveryId}: step ${position} was recorded as "${recorded}", now "${asked}"`);
    this.name = 'DeliveryReplayMismatch';
  }
}

/** Retries of a step whose call may be repeated safely (a read, a reply not yet posted). */
export interface StepRetry { attempts: number; intervalMs: number; backoff: number }

const handlers = new Map<string, InboundHandler>();
let state: { orm: MikroORM; log: Logger } | undefined;
let owner = 'flowgate';
/** Deliveries this replica's id recorded before this process started were left by its previous process. */
const startedAt = new Date();

export function setInboundDeps(orm: MikroORM, log: Logger): void {
  state = { orm, log };
}

/**
 * This replica's stable executor id: its deliveries left `processing` by a crash are taken up
 * at its next start at once (the first sweep), not after the lease.
 */
export function setInboundOwner(executorId: string): void {
  owner = executorId;
}

/** A door names the function that processes its deliveries. */
export function registerInboundHandler(door: string, handler: InboundHandler): void {
  handlers.set(door, handler);
}

/** A delivery `processing` for longer than this without a sign of life was dropped by a crash. */
export const DELIVERY_LEASE_MS = 2 * 60_000;
/** Processing renews its lease this often, so a slow delivery is never taken over while alive. */
const HEARTBEAT_MS = DELIVERY_LEASE_MS / 4;
const LEASE_SECONDS = DELIVERY_LEASE_MS / 1000;

// Recorded step results, by position: `{"0": {"name": "card", "value": …}}`. Dates are kept as dates.
const Recorded = z.record(z.string(), z.object({ name: z.string(), value: z.unknown().optional() }));
type Recorded = z.infer<typeof Recorded>;
const encode = (steps: Recorded) => JSON.stringify(steps, function (this: Record<string, unknown>, key, value) {
  const raw = this[key];
  return raw instanceof Date ? { $date: raw.toISOString() } : value;
});
const decode = (steps: unknown): Recorded => Recorded.parse(JSON.parse(JSON.stringify(steps ?? {}), (_k, v) =>
  (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v.$date === 'string' ? new Date(v.$date) : v)));

/** One attempt at processing one delivery, in this process. */
interface Attempt {
  door: string;
  deliveryId: string;
  /** The delivery's attempt counter when taken: every write is fenced by it. */
  attempts: number;
  recorded: Recorded;
  /** Results not yet written: written before the next step starts, or dropped when the delivery is done. */
  pending: Recorded;
  next: number;
  takenOver: boolean;
}

const current = new AsyncLocalStorage<Attempt>();
const keyOf = (door: string, deliveryId: string) => `${door}\u0000${deliveryId}`;
/** Deliveries this process is accepting or processing: the sweep leaves them alone. */
const mine = new Set<string>();

/**
 * A step of a delivery: its result is recorded with the delivery, so when the delivery is
 * processed again (a crash, a takeover) the recorded result is returned and `fn` does not run.
 * A result is written only before the next step starts (one statement), or not at all when it is
 * the last: once the delivery is done, nothing runs again. Outside a delivery, `fn` just runs.
 */
export async function step<T>(name: string, fn: () => Promise<T>, retry?: StepRetry): Promise<T> {
  const at = current.getStore();
  if (!at) return withRetry(fn, retry);
  const position = String(at.next++);
  const done = at.recorded[position];
  if (done) {
    if (done.name !== name) throw new DeliveryReplayMismatch(at.deliveryId, Number(position), done.name, name);
    return done.value as T;
  }
  await writePending(at);
  const value = await withRetry(fn, retry);
  at.pending[position] = value === undefined ? { name } : { name, value };
  return value;
}

/** Which attempt at its delivery the caller runs in (1 the first time; 0 outside a delivery). */
export const deliveryAttempt = (): number => current.getStore()?.attempts ?? 0;

async function withRetry<T>(fn: () => Promise<T>, retry?: StepRetry): Promise<T> {
  for (let attempt = 1, wait = retry?.intervalMs ?? 0; ; attempt++, wait *= retry?.backoff ?? 1) {
    try {
      return await fn();
    } catch (err) {
      if (!retry || attempt >= retry.attempts) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** SQL: the delivery, still processing under the attempt that took it (parameters: door, delivery id, attempts). */
const FENCED = `where door = ? and delivery_id = ? and attempts = ? and status = 'processing'`;

async function writePending(at: Attempt): Promise<void> {
  if (at.takenOver) throw new DeliveryTakenOver(at.door, at.deliveryId);
  if (!Object.keys(at.pending).length) return;
  const rows = await sql(state!.orm,
    `update inbound_deliveries set steps = coalesce(steps, '{}'::jsonb) || ?::jsonb, updated_at = now()
     ${FENCED} returning 1`,
    [encode(at.pending), at.door, at.deliveryId, at.attempts], 'flowgate-delivery-steps');
  if (!rows.length) {
    at.takenOver = true;
    throw new DeliveryTakenOver(at.door, at.deliveryId);
  }
  Object.assign(at.recorded, at.pending);
  at.pending = {};
}

/** Ends an attempt: done or failed, unless another process took the delivery meanwhile. */
async function finish(at: Attempt, status: 'done' | 'failed', error: string | null): Promise<void> {
  // Recorded steps matter only while the delivery may run again: a failed one starts afresh on redelivery.
  await sql(state!.orm,
    `update inbound_deliveries set status = ?, error = ?, steps = null, updated_at = now()
     ${FENCED}`,
    [status, error, at.door, at.deliveryId, at.attempts], 'flowgate-delivery-finish');
}

interface Taken { door: string; deliveryId: string; payload: unknown; attempts: number; steps: unknown }

/** Processes a taken delivery in this process; never throws (a failure is recorded on the delivery). */
async function processTaken(t: Taken): Promise<void> {
  const { log } = state!;
  const at: Attempt = { door: t.door, deliveryId: t.deliveryId, attempts: t.attempts, recorded: {}, pending: {}, next: 0, takenOver: false };
  const key = keyOf(t.door, t.deliveryId);
  const heartbeat = setInterval(() => {
    sql(state!.orm, `update inbound_deliveries set updated_at = now() ${FENCED} returning 1`,
      [at.door, at.deliveryId, at.attempts]).then((rows) => { if (!rows.length) at.takenOver = true; }, (err) => log.warn({ err, door: at.door, deliveryId: at.deliveryId }, 'renewing a delivery\'s lease failed'));
  }, HEARTBEAT_MS);
  heartbeat.unref();
  try {
    at.recorded = decode(t.steps);
    const handler = handlers.get(t.door);
    if (!handler) throw new Error(`no handler for ${t.door} deliveries`);
    // Outside any engine workflow's context, as a REST request: what the core starts is top-level.
    await outsideWorkflow(() => current.run(at, () => handler(t.payload, t.deliveryId)));
    await finish(at, 'done', null);
  } catch (err) {
    if (err instanceof DeliveryTakenOver) {
      log.info({ door: t.door, deliveryId: t.deliveryId }, 'a delivery was taken over by another process; this one stopped');
    } else {
      log.warn({ err, door: t.door, deliveryId: t.deliveryId }, 'processing an inbound delivery failed');
      await finish(at, 'failed', String((err as Error)?.message ?? err)).catch((e) =>
        // Left `processing`: the sweep takes it up again.
        log.warn({ err: e, door: t.door, deliveryId: t.deliveryId }, 'recording a failed delivery failed'));
    }
  } finally {
    clearInterval(heartbeat);
    mine.delete(key);
  }
}

/** Processing starts once the door's answer is on its way; the delivery is durable already. */
function processSoon(t: Taken): void {
  mine.add(keyOf(t.door, t.deliveryId));
  setImmediate(() => void processTaken(t));
}

const TakenRow = z.object({ attempts: z.number().int(), steps: z.unknown(), payload: z.unknown() });

/**
 * Accepts a delivery for processing unless it was seen before, and processes it in this process
 * right after. A delivery is marked done only after it was processed; redelivering one that
 * failed processes it again from the start, and redelivering one left `processing` past its lease
 * (a crash) takes it up where it was. What the door accepted is kept with the delivery, so the
 * sweep can process it again without a redelivery.
 */
export async function acceptDelivery(door: string, deliveryId: string, payload: unknown): Promise<'accepted' | 'duplicate'> {
  const { orm } = state!;
  const key = keyOf(door, deliveryId);
  // Ours while it is recorded, so a sweep running meanwhile does not take it as a crash's leftover.
  const wasMine = mine.has(key);
  mine.add(key);
  let accepted = false;
  try {
    const rows = await sql(orm,
      `insert into inbound_deliveries (door, delivery_id, status, payload, owner) values (?, ?, 'processing', ?::jsonb, ?)
       on conflict (door, delivery_id) do update set status = 'processing', attempts = inbound_deliveries.attempts + 1, error = null,
         updated_at = now(), payload = excluded.payload, owner = excluded.owner,
         steps = case when inbound_deliveries.status = 'failed' then null else inbound_deliveries.steps end
         where inbound_deliveries.status = 'failed'
            or (inbound_deliveries.status = 'processing' and inbound_deliveries.updated_at < now() - make_interval(secs => ?))
       returning attempts, steps, payload`, [door, deliveryId, JSON.stringify(payload ?? null), owner, LEASE_SECONDS], 'flowgate-delivery-accept');
    if (!rows.length) return 'duplicate';
    const taken = TakenRow.parse(rows[0]);
    if (taken.attempts > 1) state!.log.warn({ door, deliveryId, attempt: taken.attempts }, 'a delivery was accepted again (it had failed, or a crash left it processing)');
    processSoon({ door, deliveryId, payload, attempts: taken.attempts, steps: taken.steps });
    accepted = true;
    return 'accepted';
  } finally {
    // Once accepted, processing holds it (and lets go when it ends).
    if (!accepted && !wasMine) mine.delete(key);
  }
}

const Stalled = z.object({ door: z.string(), delivery_id: z.string(), attempts: z.number().int() });

/**
 * The sweep: deliveries left `processing` past their lease (a crashed replica), or recorded by
 * this replica's previous process before this one started (it crashed or stopped mid-way), are taken (the attempt
 * counter moves once, so replicas racing here take each once) and processed again.
 */
export async function retakeStalledDeliveries(limit = 100): Promise<number> {
  if (!state) return 0;
  const { orm, log } = state;
  const rows = (await sql(orm,
    `select door, delivery_id, attempts from inbound_deliveries
     where status = 'processing' and payload is not null
       and (updated_at < now() - make_interval(secs => ?) or (owner = ? and updated_at < ?))
     order by updated_at limit ?`, [LEASE_SECONDS, owner, startedAt, limit])).map((r) => Stalled.parse(r));
  let retaken = 0;
  for (const r of rows) {
    if (mine.has(keyOf(r.door, r.delivery_id))) continue;
    const [row] = await sql(orm,
      `update inbound_deliveries set attempts = attempts + 1, updated_at = now(), owner = ?
       where door = ? and delivery_id = ? and status = 'processing' and attempts = ? returning attempts, steps, payload`,
      [owner, r.door, r.delivery_id, r.attempts]);
    if (!row) continue;
    const taken = TakenRow.parse(row);
    log.warn({ door: r.door, deliveryId: r.delivery_id, attempt: taken.attempts }, 'a delivery left processing was taken up again');
    processSoon({ door: r.door, deliveryId: r.delivery_id, payload: taken.payload, attempts: taken.attempts, steps: taken.steps });
    retaken += 1;
  }
  return retaken;
}

/**
 * Deliveries were DBOS workflows before: one still pending from then is recovered at start and
 * ends at once. Its delivery is still `processing`, so the sweep takes it up.
 */
DBOS.registerWorkflow(async (_door: string, _deliveryId: string, _payload: unknown) => {}, { name: 'flowgate.inbound' });

/** How a delivery stands (tests and diagnostics). */
export async function deliveryStatus(orm: MikroORM, door: string, deliveryId: string): Promise<{ status: string; attempts: number; error: string | null } | null> {
  const rows = await orm.em.fork().getConnection().execute<{ status: string; attempts: number; error: string | null }[]>(
    'select status, attempts, error from inbound_deliveries where door = ? and delivery_id = ?', [door, deliveryId]);
  return rows[0] ?? null;
}
