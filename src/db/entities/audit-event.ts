import { EntitySchema } from '@mikro-orm/core';

export class AuditEvent {
  id!: string;
  at: Date = new Date();
  /** Who acted: a token name, a person's email, or `system`. */
  actor!: string;
  /** Which door the action came through: rest, cli, engine, slack, github, azure-devops. */
  door!: string;
  action!: string;
  targetType!: string;
  targetId!: string;
  details?: Record<string, unknown> | null;
}

export const AuditEventSchema = new EntitySchema<AuditEvent>({
  class: AuditEvent,
  tableName: 'audit_events',
  properties: {
    id: { type: 'uuid', primary: true },
    at: { type: 'datetime' },
    actor: { type: 'text' },
    door: { type: 'text' },
    action: { type: 'text' },
    targetType: { type: 'text' },
    targetId: { type: 'text' },
    details: { type: 'json', nullable: true },
  },
});
