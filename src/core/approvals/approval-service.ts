import { LockMode, type MikroORM } from '@mikro-orm/postgresql';
import { Approval, type ChatRef } from '../../db/entities/approval.js';
import type { Callback } from '../../db/entities/run.js';
import { badRequest, conflict, forbidden, notFound } from '../../errors.js';
import { SYSTEM, type Actor, type AuditLog } from '../audit/audit-log.js';
import { newId } from '../ids.js';
import type { ProjectService } from '../projects/projects.js';
import { applyDecision, refusal, type Person, type Verdict } from './approval-rules.js';
import { presentApproval } from './present-approval.js';

export interface ApprovalSpec {
  /** Explicit approver emails; null or empty means the project's owners. */
  approvers: string[] | null;
  quorum: number;
  allowSelfApproval: boolean;
  timeoutHours: number;
  message?: string | null;
  context: Record<string, unknown>;
}

export interface StepApprovalInput {
  runId: string;
  stepRef: string;
  repositoryIdentifier: string;
  requestedBy: string;
  callback: Callback | null;
}

export interface ExternalApprovalInput {
  taskId: string;
  engine: string;
  engineRunId?: string | null;
  eventKey?: string | null;
  requestedBy: string;
  repositoryIdentifier?: string | null;
  callback: Callback | null;
}

/** What happens after a decision: wake the waiting step or deliver to the external engine. */
export interface ApprovalEffects {
  /** The approval left `pending`. */
  decided(approval: Approval): Promise<void>;
  /** Anything a thread should show changed: a vote, a decision, expiry, cancellation. */
  changed(approval: Approval): Promise<void>;
}

/**
 * Approvals: the one place where who may decide is checked and a decision is recorded.
 * pending → decided happens under a row lock, so concurrent clicks yield exactly one outcome.
 */
export class ApprovalService {
  private effects: ApprovalEffects = { decided: async () => {}, changed: async () => {} };

  constructor(private readonly orm: MikroORM, private readonly projects: ProjectService, private readonly audit: AuditLog) {}

  /** Wired after construction: the effects need the engine, which needs this service. */
  setEffects(effects: ApprovalEffects): void {
    this.effects = effects;
  }

  /** Opens the approval of a run step; idempotent, so a replayed step gets the same approval. */
  async openForStep(input: StepApprovalInput, spec: ApprovalSpec, now: Date): Promise<Approval> {
    const em = this.orm.em.fork();
    const existing = await em.findOne(Approval, { runId: input.runId, stepRef: input.stepRef });
    if (existing) return existing;
    await this.checkQuorum(spec, input.repositoryIdentifier);
    const approval = this.build(spec, now, {
      runId: input.runId, stepRef: input.stepRef, repositoryIdentifier: input.repositoryIdentifier,
      requestedBy: input.requestedBy, callback: input.callback,
    });
    await em.getConnection().execute(
      `insert into approvals (id, run_id, step_ref, repository_identifier, requested_by, approvers, quorum, allow_self_approval, message, context, callback, chat, status, decisions, requested_at, expires_at)
       values (?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, 'pending', '[]', ?, ?)
       on conflict (run_id, step_ref) where run_id is not null do nothing`,
      [approval.id, approval.runId, approval.stepRef, approval.repositoryIdentifier, approval.requestedBy, json(approval.approvers), approval.quorum,
        approval.allowSelfApproval, approval.message, json(approval.context), json(approval.callback), json(approval.chat), approval.requestedAt, approval.expiresAt]);
    const stored = (await this.orm.em.fork().findOne(Approval, { runId: input.runId, stepRef: input.stepRef }))!;
    if (stored.id === approval.id) await this.audit.record({ name: input.requestedBy, door: 'engine' }, 'approval.requested', 'approval', stored.id, { runId: input.runId, step: input.stepRef });
    return stored;
  }

  /** An approval for a flow suspended in an external engine (`POST /approvals`). */
  async openExternal(input: ExternalApprovalInput, spec: ApprovalSpec, actor: Actor): Promise<Approval> {
    await this.checkQuorum(spec, input.repositoryIdentifier ?? null);
    const approval = this.build(spec, new Date(), {
      taskId: input.taskId, engine: input.engine, engineRunId: input.engineRunId ?? null, eventKey: input.eventKey ?? null,
      repositoryIdentifier: input.repositoryIdentifier ?? null, requestedBy: input.requestedBy, callback: input.callback,
    });
    await this.orm.em.fork().insert(Approval, approval);
    await this.audit.record(actor, 'approval.requested', 'approval', approval.id, { taskId: input.taskId, engine: input.engine });
    return approval;
  }

  private build(spec: ApprovalSpec, now: Date, fields: Partial<Approval>): Approval {
    const approvers = spec.approvers?.length ? [...new Set(spec.approvers.map((e) => e.toLowerCase()))] : null;
    return Object.assign(new Approval(), {
      id: newId(), approvers, quorum: spec.quorum, allowSelfApproval: spec.allowSelfApproval, message: spec.message ?? null,
      context: spec.context, chat: chatOf(fields.callback ?? null, fields.repositoryIdentifier ?? null), status: 'pending', decisions: [],
      requestedAt: now, expiresAt: new Date(now.getTime() + spec.timeoutHours * 3_600_000), ...fields,
    });
  }

  private async checkQuorum(spec: ApprovalSpec, repositoryIdentifier: string | null): Promise<void> {
    const explicit = spec.approvers?.length ? new Set(spec.approvers.map((e) => e.toLowerCase())).size : undefined;
    if (explicit === undefined && !repositoryIdentifier) throw badRequest('approvers are required when the approval belongs to no project', [{ field: 'approvers', message: 'required without a project', location: 'body' }]);
    const pool = explicit ?? (await this.projects.get(repositoryIdentifier!)).owners.length;
    if (spec.quorum > pool) throw badRequest(`quorum ${spec.quorum} can never be reached with ${pool} possible approver(s)`, [{ field: 'quorum', message: `at most ${pool}`, location: 'body' }]);
  }

  async get(id: string): Promise<Approval | null> {
    return this.orm.em.fork().findOne(Approval, { id });
  }

  /** The approval of a run: its pending one, else its latest. */
  async forRun(runId: string): Promise<Approval | null> {
    const list = await this.orm.em.fork().find(Approval, { runId }, { orderBy: { requestedAt: 'desc' } });
    return list.find((a) => a.status === 'pending') ?? list[0] ?? null;
  }

  forRuns(runIds: string[]): Promise<Approval[]> {
    if (!runIds.length) return Promise.resolve([]);
    return this.orm.em.fork().find(Approval, { runId: { $in: runIds } }, { orderBy: { requestedAt: 'asc' } });
  }

  async listPending(projects: string[] | null): Promise<Approval[]> {
    const where: Record<string, unknown> = { status: 'pending' };
    if (projects !== null) where.repositoryIdentifier = { $in: projects };
    return this.orm.em.fork().find(Approval, where, { orderBy: { requestedAt: 'asc' }, limit: 500 });
  }

  /** The approval posted to a chat thread: the pending one if any, else the latest. */
  async byChat(kind: 'slack' | 'github' | 'azureDevOps', keys: Record<string, string | number>): Promise<Approval | null> {
    const conds = Object.keys(keys).map((k) => `chat->'${kind}'->>'${k}' = ?`).join(' and ');
    const rows = await this.orm.em.fork().getConnection().execute<{ id: string }[]>(
      `select id from approvals where ${conds} order by (status = 'pending') desc, requested_at desc limit 1`, Object.values(keys).map(String));
    return rows[0] ? this.get(rows[0].id) : null;
  }

  /**
   * Records one person's decision. Refusals (not an approver, self-approval, decided) are
   * audited and raised; an accepted decision that settles the approval triggers its effects once.
   */
  async decide(id: string, person: Person, verdict: Verdict, reason: string | null, door: string): Promise<Approval> {
    const actor = { name: person.email.toLowerCase(), door };
    const em = this.orm.em.fork();
    const outcome = await em.transactional(async (tx) => {
      const a = await tx.findOne(Approval, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!a) throw notFound(`Approval request ${id} not found`);
      const now = new Date();
      if (a.status === 'pending' && a.expiresAt <= now) {
        a.status = 'expired';
        a.resolvedAt = now;
        await tx.flush();
        return { a, changed: true, refused: `Approval request expired at ${a.expiresAt.toISOString()}` };
      }
      if (a.status !== 'pending') return { a, changed: false, refused: `Approval request already ${a.status}` };
      const owners = a.approvers ? [] : a.repositoryIdentifier ? (await this.projects.find(a.repositoryIdentifier))?.owners ?? [] : [];
      const why = refusal(a, person, verdict, owners);
      if (why) return { a, changed: false, forbidden: why };
      const changed = applyDecision(a, person, verdict, reason, door, now);
      await tx.flush();
      return { a, changed };
    });
    const { a } = outcome;
    if ('forbidden' in outcome && outcome.forbidden) {
      await this.audit.record(actor, 'approval.refused', 'approval', a.id, { verdict, reason: outcome.forbidden });
      throw forbidden(outcome.forbidden);
    }
    if ('refused' in outcome && outcome.refused) {
      if (outcome.changed) {
        await this.effects.decided(a);
        await this.effects.changed(a);
      }
      await this.audit.record(actor, 'approval.refused', 'approval', a.id, { verdict, reason: outcome.refused });
      throw conflict(outcome.refused, { approval: presentApproval(a, null) });
    }
    await this.audit.record(actor, outcome.changed ? `approval.${a.status}` : 'approval.vote', 'approval', a.id, { verdict, reason, runId: a.runId ?? undefined });
    if (outcome.changed) await this.effects.decided(a);
    await this.effects.changed(a);
    return a;
  }

  /**
   * A decision over an API whose caller names the deciding email in the body: it must be the
   * person the credential belongs to. Refusals are audited like every other refusal.
   */
  async decideClaimed(id: string, caller: { name: string; email: string | null }, claimedEmail: string, displayName: string, verdict: Verdict, reason: string | null, door: string): Promise<Approval> {
    const refuse = async (why: string) => {
      await this.audit.record({ name: caller.email ?? `token:${caller.name}`, door }, 'approval.refused', 'approval', id, { verdict, reason: why });
      return forbidden(why);
    };
    if (!caller.email) throw await refuse(`Token "${caller.name}" is not bound to a person (no email), so it cannot decide approvals`);
    if (claimedEmail.toLowerCase() !== caller.email.toLowerCase())
      throw await refuse(`${verdict === 'approve' ? 'approverEmail' : 'rejectorEmail'} ${claimedEmail} does not match the person of this token (${caller.email})`);
    return this.decide(id, { email: caller.email, name: displayName }, verdict, reason, door);
  }

  /** Expires a pending approval whose time has come; returns the approval as it now stands. */
  async expire(id: string): Promise<Approval> {
    const em = this.orm.em.fork();
    const n = await em.nativeUpdate(Approval, { id, status: 'pending', expiresAt: { $lte: new Date() } }, { status: 'expired', resolvedAt: new Date() });
    const a = (await this.get(id))!;
    if (n) {
      await this.audit.record(SYSTEM, 'approval.expired', 'approval', id);
      await this.effects.changed(a);
    }
    return a;
  }

  /** Closes the pending approvals of runs that were cancelled (`cancelled`) or ended otherwise (`stale`). */
  async closeForRuns(runIds: string[], status: 'cancelled' | 'stale', actor: Actor): Promise<Approval[]> {
    if (!runIds.length) return [];
    const em = this.orm.em.fork();
    const pending = await em.find(Approval, { runId: { $in: runIds }, status: 'pending' });
    const closed: Approval[] = [];
    for (const a of pending) {
      const n = await em.nativeUpdate(Approval, { id: a.id, status: 'pending' }, { status, resolvedAt: new Date(), resolvedBy: status === 'cancelled' ? actor.name : null });
      if (n) {
        closed.push(Object.assign(a, { status }));
        await this.audit.record(actor, `approval.${status}`, 'approval', a.id, { runId: a.runId });
        await this.effects.changed(a);
      }
    }
    return closed;
  }

  /** Remembers where a chat door posted the request, so later updates edit that message. */
  async recordPosted(id: string, posted: ChatRef): Promise<void> {
    const em = this.orm.em.fork();
    await em.transactional(async (tx) => {
      const a = await tx.findOne(Approval, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!a) return;
      a.chat = { ...a.chat, ...posted };
      await tx.flush();
    });
  }

  /** Pending external approvals past their expiry, for the sweeper. */
  overdueExternal(limit = 100): Promise<Approval[]> {
    return this.orm.em.fork().find(Approval, { runId: null, status: 'pending', expiresAt: { $lte: new Date() } }, { limit });
  }

  /** Decided run approvals whose step may still be waiting: their wake-up is re-sent (idempotent). */
  decidedAwaitingWake(limit = 100): Promise<Approval[]> {
    return this.orm.em.fork().getConnection().execute<{ id: string }[]>(
      `select a.id from approvals a join step_runs s on s.run_id = a.run_id and s.step_ref = a.step_ref
       where a.status <> 'pending' and s.status = 'waiting' and s.waiting_for = 'approval:' || a.id limit ?`, [limit],
    ).then((rows) => this.orm.em.fork().find(Approval, { id: { $in: rows.map((r) => r.id) } }));
  }
}

const json = (v: unknown) => JSON.stringify(v ?? null);

/** Where the request is posted, derived from the callback: doors find approvals by these keys. */
function chatOf(callback: Callback | null, repositoryIdentifier: string | null): ChatRef {
  const chat: ChatRef = {};
  const s = callback?.slack;
  if (s && typeof s.channel === 'string' && typeof s.threadTs === 'string') chat.slack = { channel: s.channel, threadTs: s.threadTs };
  const g = callback?.github;
  if (g && (typeof g.issueNumber === 'number' || typeof g.issueNumber === 'string'))
    chat.github = { repositoryIdentifier: String(g.repositoryIdentifier ?? repositoryIdentifier ?? ''), issueNumber: Number(g.issueNumber) };
  const z = callback?.azureDevOps;
  if (z && (typeof z.workItemId === 'number' || typeof z.workItemId === 'string'))
    chat.azureDevOps = { repositoryIdentifier: String(z.repositoryIdentifier ?? repositoryIdentifier ?? ''), workItemId: Number(z.workItemId) };
  return chat;
}
