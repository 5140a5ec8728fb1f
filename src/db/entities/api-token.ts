import { EntitySchema } from '@mikro-orm/core';

export type Role = 'owner' | 'member' | 'application' | 'viewer';
/** Highest first (see core/identity/roles.ts); `viewer` may only read. */
export const ROLES: readonly Role[] = ['owner', 'member', 'application', 'viewer'];

export class ApiToken {
  id!: string;
  name!: string;
  role!: Role;
  /** The person this token acts for; approvals are decided as this email. */
  email?: string | null;
  /** Repository identifiers the token may touch; null means every project. */
  projects?: string[] | null;
  /** SHA-256 of the secret; the secret itself is never stored. */
  tokenHash!: string;
  createdAt: Date = new Date();
  lastUsedAt?: Date | null;
  /** Set on a per-execution token: the one run it may report on (see TokenService.createForRun). */
  runId?: string | null;
  /** After this instant the token is refused; null means it does not expire. */
  expiresAt?: Date | null;
  /** The token that created this one (null: the CLI, start-up, or a creator since revoked). */
  createdBy?: string | null;
}

export const ApiTokenSchema = new EntitySchema<ApiToken>({
  class: ApiToken,
  tableName: 'api_tokens',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    role: { type: 'text' },
    email: { type: 'text', nullable: true },
    projects: { type: 'json', nullable: true },
    tokenHash: { type: 'text', unique: true },
    createdAt: { type: 'datetime' },
    lastUsedAt: { type: 'datetime', nullable: true },
    runId: { type: 'uuid', nullable: true },
    expiresAt: { type: 'datetime', nullable: true },
    createdBy: { type: 'uuid', nullable: true },
  },
});
