import { EntitySchema } from '@mikro-orm/core';
import type { Callback } from './run.js';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'stale';

export interface Decision {
  email: string;
  name: string;
  verdict: 'approve' | 'reject';
  reason?: string | null;
  door: string;
  at: string;
}

/** Where the approval request was posted, so a door can find it again from its thread. */
export interface ChatRef {
  slack?: { channel: string; threadTs: string; messageTs?: string };
  github?: { repositoryIdentifier: string; issueNumber: number; commentId?: number };
  azureDevOps?: { repositoryIdentifier: string; workItemId: number; commentId?: number };
}

export class Approval {
  id!: string;
  /** The run and step it gates; null for approvals of flows in an external engine. */
  runId?: string | null;
  stepRef?: string | null;
  /** External engine fields (`POST /approvals`). */
  taskId?: string | null;
  engine?: string | null;
  engineRunId?: string | null;
  eventKey?: string | null;
  repositoryIdentifier?: string | null;
  requestedBy!: string;
  /** Explicit approver emails; null means the project's owners (checked live). */
  approvers?: string[] | null;
  quorum = 1;
  allowSelfApproval = false;
  message?: string | null;
  context: Record<string, unknown> = {};
  callback?: Callback | null;
  chat: ChatRef = {};
  status: ApprovalStatus = 'pending';
  decisions: Decision[] = [];
  resolvedBy?: string | null;
  resolvedAt?: Date | null;
  reason?: string | null;
  requestedAt: Date = new Date();
  expiresAt!: Date;
}

export const ApprovalSchema = new EntitySchema<Approval>({
  class: Approval,
  tableName: 'approvals',
  properties: {
    id: { type: 'uuid', primary: true },
    runId: { type: 'uuid', nullable: true },
    stepRef: { type: 'text', nullable: true },
    taskId: { type: 'text', nullable: true },
    engine: { type: 'text', nullable: true },
    engineRunId: { type: 'text', nullable: true },
    eventKey: { type: 'text', nullable: true },
    repositoryIdentifier: { type: 'text', nullable: true },
    requestedBy: { type: 'text' },
    approvers: { type: 'json', nullable: true },
    quorum: { type: 'integer' },
    allowSelfApproval: { type: 'boolean' },
    message: { type: 'text', nullable: true },
    context: { type: 'json' },
    callback: { type: 'json', nullable: true },
    chat: { type: 'json' },
    status: { type: 'text' },
    decisions: { type: 'json' },
    resolvedBy: { type: 'text', nullable: true },
    resolvedAt: { type: 'datetime', nullable: true },
    reason: { type: 'text', nullable: true },
    requestedAt: { type: 'datetime' },
    expiresAt: { type: 'datetime' },
  },
});
