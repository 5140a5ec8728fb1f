import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { AuditEvent } from '../../db/entities/audit-event.js';
import { newId } from '../ids.js';

/** Who did something, and through which door (rest, cli, engine, slack, github, azure-devops). */
export interface Actor {
  name: string;
  door: string;
}

export const SYSTEM: Actor = { name: 'system', door: 'engine' };

/** Appends audit records: one per state change, never updated. */
export class AuditLog {
  constructor(private readonly orm: MikroORM) {}

  /** With `em`, the record is written in that entity manager's transaction. */
  async record(actor: Actor, action: string, targetType: string, targetId: string, details?: Record<string, unknown>, em: EntityManager = this.orm.em.fork()): Promise<void> {
    const event = Object.assign(new AuditEvent(), {
      id: newId(), at: new Date(), actor: actor.name, door: actor.door, action, targetType, targetId, details: details ?? null,
    });
    await em.insert(AuditEvent, event);
  }

  async list(filter: { targetType?: string; targetId?: string; limit?: number }): Promise<AuditEvent[]> {
    const where: Record<string, unknown> = {};
    if (filter.targetType) where.targetType = filter.targetType;
    if (filter.targetId) where.targetId = filter.targetId;
    return this.orm.em.fork().find(AuditEvent, where, { orderBy: { at: 'desc' }, limit: filter.limit ?? 100 });
  }
}
