import { ApiTokenSchema } from './api-token.js';
import { ApprovalSchema } from './approval.js';
import { IdentitySchema } from './identity.js';
import { AuditEventSchema } from './audit-event.js';
import { LogLineSchema } from './log-line.js';
import { ProjectSchema } from './project.js';
import { RunSchema } from './run.js';
import { RunLockSchema } from './run-lock.js';
import { StepRunSchema } from './step-run.js';

export const entities = [ProjectSchema, ApiTokenSchema, AuditEventSchema, RunSchema, StepRunSchema, LogLineSchema, ApprovalSchema, IdentitySchema, RunLockSchema];
