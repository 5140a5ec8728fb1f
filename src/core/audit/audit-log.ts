import type { MikroORM } from '@mikro-orm/postgresql';
import { AuditEvent } from '../../db/entities/audit-event.js';
import { sql } from '../../db/sql.js';
import { newId } from '../ids.js';

/** Who did something, and through which door (rest, cli, engine, slack, github, azure-devops). */
export interface Actor {
  name: string;
  door: string;
}

export const SYSTEM: Actor = { name: 'system', door: 'engine' };

/** An audit record to write as part of another statement (see `AUDIT_INSERT_FROM`). */
export interface AuditEntry {
  actor: Actor;
  action: string;
  details?: Record<string, unknown>;
}

/**
 * Inserts an audit record whose target id comes from a CTE's `id` column (`from <cte>` follows);
 * its parameters are `auditParams(entry, targetType)`.
 */
export const AUDIT_INSERT_SELECT = `insert into audit_events (id, at, actor, door, action, target_type, target_id, details)
  select ?, now(), ?, ?, ?, ?, id, ?::jsonb`;

export function auditParams(entry: AuditEntry, targetType: string): unknown[] {
  return [newId(), entry.actor.name, entry.actor.door, entry.action, targetType, entry.details ? JSON.stringify(entry.details) : null];
}

/** Appends audit records: one per state change, never updated. */
export class AuditLog {
  constructor(private readonly orm: MikroORM) {}

  async record(actor: Actor, action: string, targetType: string, targetId: string, details?: Record<string, unknown>): Promise<void> {
    await sql(this.orm, 'insert into audit_events (id, at, actor, door, action, target_type, target_id, details) values (?, ?, ?, ?, ?, ?, ?, ?::jsonb)',
      [newId(), new Date(), actor.name, actor.door, action, targetType, targetId, details ? JSON.stringify(details) : null], 'flowgate-audit-record');
  }

  async list(filter: { targetType?: string; targetId?: string; limit?: number }): Promise<AuditEvent[]> {
    const where: Record<string, unknown> = {};
    if (filter.targetType) where.targetType = filter.targetType;
    if (filter.targetId) where.targetId = filter.targetId;
    return this.orm.em.fork().find(AuditEvent, where, { orderBy: { at: 'desc' }, limit: filter.limit ?? 100 });
  }
}
