import { LockMode, type MikroORM } from '@mikro-orm/postgresql';
import { Approval, ApprovalSchema, type ChatRef } from '../../db/entities/approval.js';
import type { Callback, Run } from '../../db/entities/run.js';
import { columnsOf, rowTo, sql } from '../../db/sql.js';
import { badRequest, conflict, forbidden, notFound } from '../../errors.js';
import { AUDIT_INSERT_SELECT, auditParams, SYSTEM, type Actor, type AuditEntry, type AuditLog } from '../audit/audit-log.js';
import { signalRuns, toldThroughOutbox } from '../runs/run-sql.js';
import { isUuid, newId } from '../ids.js';
import type { ProjectService } from '../projects/projects.js';
import { applyDecision, refusal, type Person, type Verdict } from './approval-rules.js';
import { resolveApprovalPolicy, type ApproverSpec } from './approver-policy.js';
import { foreignCallbackProblem } from '../runs/callback-rules.js';
import { presentApproval } from './present-approval.js';
import { ThreadLookup, type ThreadRef } from './thread-lookup.js';
import { callerLabel, type Principal } from '../identity/principal.js';

export interface ApprovalSpec {
  /** `owners`, `group:<name>` and explicit emails (see approver-policy.ts); null or empty means the project's owners. */
  approvers: ApproverSpec;
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
  /**
   * The payload of the NOTIFYs a decision's statement sends when it wakes the run or queues its
   * notice: this process's listener ignores them (`told` acts here at once), other replicas' do not.
   */
  notifyMark?(): string;
  /** A decision's own statement woke the approval's v2 run and/or queued its thread's notice. */
  told?(what: { woke: boolean; noticed: boolean }): void;
}

/** A decision that keeps losing the race to concurrent ones gives up after this many reads. */
const MAX_DECIDE_ATTEMPTS = 20;

/** What a thread command without (or with) an approval id refers to. */
export type ThreadPick =
  | { kind: 'one'; approval: Approval }
  | { kind: 'ambiguous'; pending: Approval[] }
  | { kind: 'unknown'; pending: Approval[] }
  | { kind: 'none' };

export const APPROVAL_COLUMNS = columnsOf(ApprovalSchema);

/** SQL: the approval whose id is the expression `id`, as one JSON value (null if none) for `rowTo`: read inside another statement. */
export const approvalJsonSql = (id: string) => `(select to_jsonb(x) from (select ${APPROVAL_COLUMNS} from approvals where id = ${id}) x)`;

/** Several pending approvals and none named: a 409 that lists them (nothing was decided). */
export function ambiguous(pending: Approval[], message: string) {
  return conflict(message, { pendingApprovals: pending.map((a) => ({ id: a.id, executionId: a.runId ?? undefined, stepRef: a.stepRef ?? undefined, requestedBy: a.requestedBy, requestedAt: a.requestedAt.toISOString() })) });
}

/**
 * Approvals: the one place where who may decide is checked and a decision is recorded.
 * pending → decided is a write conditional on the state it was decided from, so concurrent
 * clicks yield exactly one outcome.
 */
export class ApprovalService {
  private effects: ApprovalEffects = { decided: async () => {}, changed: async () => {} };

  private readonly threads: ThreadLookup;

  constructor(private readonly orm: MikroORM, private readonly projects: ProjectService, private readonly audit: AuditLog) {
    this.threads = new ThreadLookup(orm, projects);
  }

  /** Wired after construction: the effects need the engine, which needs this service. */
  setEffects(effects: ApprovalEffects): void {
    this.effects = effects;
  }

  /**
   * Opens the approval of a run step; idempotent, so a replayed step gets the same approval. One
   * statement: the approval and its audit record, or the approval the step opened before.
   */
  async openForStep(input: StepApprovalInput, spec: ApprovalSpec, now: Date): Promise<Approval> {
    const ofStep = [input.runId, input.stepRef];
    const existing = async () => (await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where run_id = ? and step_ref = ?`, ofStep))[0];
    let approvers: string[] | null;
    try {
      approvers = await this.policy(spec, input.repositoryIdentifier, input.requestedBy);
    } catch (err) {
      // A replayed step whose approval exists gets it, whatever the policy says now.
      const row = await existing();
      if (row) return rowTo<Approval>(ApprovalSchema, row);
      throw err;
    }
    const approval = this.build(spec, approvers, now, {
      runId: input.runId, stepRef: input.stepRef, repositoryIdentifier: input.repositoryIdentifier,
      requestedBy: input.requestedBy, callback: input.callback,
    });
    const entry: AuditEntry = { actor: { name: input.requestedBy, door: 'engine' }, action: 'approval.requested', details: { runId: input.runId, step: input.stepRef } };
    const rows = await sql(this.orm,
      `with opened as (
         insert into approvals (id, run_id, step_ref, repository_identifier, requested_by, approvers, quorum, allow_self_approval, message, context, callback, chat, status, decisions, requested_at, expires_at)
         values (?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, 'pending', '[]', ?, ?)
         on conflict (run_id, step_ref) where run_id is not null do nothing
         returning ${APPROVAL_COLUMNS}),
       audited as (${AUDIT_INSERT_SELECT} from opened)
       select ${APPROVAL_COLUMNS} from opened
       union all select ${APPROVAL_COLUMNS} from approvals where run_id = ? and step_ref = ? and not exists (select 1 from opened)`,
      [approval.id, approval.runId, approval.stepRef, approval.repositoryIdentifier, approval.requestedBy, json(approval.approvers), approval.quorum,
        approval.allowSelfApproval, approval.message, json(approval.context), json(approval.callback), json(approval.chat), approval.requestedAt, approval.expiresAt,
        ...auditParams(entry, 'approval'), ...ofStep],
      'flowgate-approval-open');
    // Opened by a concurrent replay that committed after this statement began: read it now.
    return rowTo<Approval>(ApprovalSchema, rows[0] ?? (await existing()));
  }

  /** An approval for a flow suspended in an external engine (`POST /approvals`). */
  async openExternal(input: ExternalApprovalInput, spec: ApprovalSpec, actor: Actor): Promise<Approval> {
    const cb = input.callback;
    if (cb && cb.type !== 'none' && cb.type !== 'webhook') {
      const project = input.repositoryIdentifier ? await this.projects.find(input.repositoryIdentifier) : null;
      const foreign = project ? foreignCallbackProblem(cb, project, actor.door) : `callback: a ${cb.type} thread can be named only for an approval of a registered project`;
      if (foreign) {
        await this.audit.record(actor, 'approval.refused', 'project', input.repositoryIdentifier ?? '(none)', { taskId: input.taskId, reason: foreign });
        throw forbidden(foreign);
      }
    }
    const approvers = await this.policy(spec, input.repositoryIdentifier ?? null, input.requestedBy);
    const approval = this.build(spec, approvers, new Date(), {
      taskId: input.taskId, engine: input.engine, engineRunId: input.engineRunId ?? null, eventKey: input.eventKey ?? null,
      repositoryIdentifier: input.repositoryIdentifier ?? null, requestedBy: input.requestedBy, callback: input.callback,
    });
    await this.orm.em.fork().insert(Approval, approval);
    await this.audit.record(actor, 'approval.requested', 'approval', approval.id, { taskId: input.taskId, engine: input.engine });
    return approval;
  }

  private build(spec: ApprovalSpec, approvers: string[] | null, now: Date, fields: Partial<Approval>): Approval {
    return Object.assign(new Approval(), {
      id: newId(), approvers, quorum: spec.quorum, allowSelfApproval: spec.allowSelfApproval, message: spec.message ?? null,
      context: spec.context, chat: chatOf(fields.callback ?? null, fields.repositoryIdentifier ?? null), status: 'pending', decisions: [],
      requestedAt: now, expiresAt: new Date(now.getTime() + spec.timeoutHours * 3_600_000), ...fields,
    });
  }

  /** The approvers an approval gets, or a 400 naming why it could never be decided. */
  private async policy(spec: ApprovalSpec, repositoryIdentifier: string | null, requestedBy: string): Promise<string[] | null> {
    // An external approval may name a repository Flowgate does not manage: it then needs explicit approvers.
    const project = repositoryIdentifier ? await this.projects.find(repositoryIdentifier) : null;
    const resolved = resolveApprovalPolicy(spec.approvers, project, { quorum: spec.quorum, allowSelfApproval: spec.allowSelfApproval, requestedBy });
    if ('problem' in resolved) throw badRequest(resolved.problem, [{ field: resolved.field, message: resolved.problem, location: 'body' }]);
    return resolved.approvers;
  }

  async get(id: string): Promise<Approval | null> {
    if (!isUuid(id)) return null;
    const [row] = await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where id = ?`, [id], 'flowgate-approval-get');
    return row ? rowTo<Approval>(ApprovalSchema, row) : null;
  }

  /** A run's approvals, newest first (plain SQL: every decision by run id reads them). */
  private async ofRun(runId: string): Promise<Approval[]> {
    const rows = await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where run_id = ? order by requested_at desc`, [runId]);
    return rows.map((r) => rowTo<Approval>(ApprovalSchema, r));
  }

  /** The approval of a run: its pending one, else its latest. */
  async forRun(runId: string): Promise<Approval | null> {
    const list = await this.ofRun(runId);
    return list.find((a) => a.status === 'pending') ?? list[0] ?? null;
  }

  /**
   * The approval a decision naming a run means: the run's one pending approval (an orchestrator's:
   * its descendants' one). Several pending → a 409 listing them, so the caller names one; none →
   * the run's latest (its decision is refused as already decided), or null.
   */
  async decidableForRun(runId: string): Promise<Approval | null> {
    const own = await this.ofRun(runId);
    let pending = own.filter((a) => a.status === 'pending');
    if (!pending.length) {
      const rows = await sql<{ id: string }>(this.orm,
        `with recursive tree as (select id from runs where parent_run_id = ? union all select r.id from runs r join tree t on r.parent_run_id = t.id)
         select a.id from approvals a join tree t on a.run_id = t.id where a.status = 'pending' order by a.requested_at`, [runId]);
      pending = rows.length ? await this.orm.em.fork().find(Approval, { id: { $in: rows.map((r) => r.id) } }, { orderBy: { requestedAt: 'asc' } }) : [];
    }
    if (pending.length > 1) throw ambiguous(pending, `Execution ${runId} has ${pending.length} pending approvals; decide one by its id`);
    return pending[0] ?? own[0] ?? null;
  }

  async forRuns(runIds: string[]): Promise<Approval[]> {
    if (!runIds.length) return [];
    const rows = await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where run_id = any(?::uuid[]) order by requested_at`, [runIds]);
    return rows.map((r) => rowTo<Approval>(ApprovalSchema, r));
  }

  async listPending(projects: string[] | null): Promise<Approval[]> {
    const where: Record<string, unknown> = { status: 'pending' };
    if (projects !== null) where.repositoryIdentifier = { $in: projects };
    return this.orm.em.fork().find(Approval, where, { orderBy: { requestedAt: 'asc' }, limit: 500 });
  }

  /** The approval of a thread (its projects' only): the pending one if any, else the latest. */
  async byThread(thread: ThreadRef): Promise<Approval | null> {
    return (await this.threads.approvals(thread))[0] ?? null;
  }

  /** The approvals of a thread (its projects' only): pending first, then newest first. */
  inThread(thread: ThreadRef): Promise<Approval[]> {
    return this.threads.approvals(thread);
  }

  /** The runs of a thread: started from it, newest first, then those of its approvals (see `ThreadLookup.runs`). */
  runsOfThread(thread: ThreadRef): Promise<Run[]> {
    return this.threads.runs(thread);
  }

  /**
   * The approval a thread command means: the one it names (an approval of this thread only), else
   * the thread's only pending one (none pending: its latest, whose decision is refused as decided).
   * Several pending and none named → `ambiguous` with the list; the caller decides nothing.
   */
  async pickInThread(thread: ThreadRef, approvalId?: string): Promise<ThreadPick> {
    const all = await this.threads.approvals(thread);
    if (approvalId) {
      const named = all.find((a) => a.id === approvalId.toLowerCase());
      return named ? { kind: 'one', approval: named } : { kind: 'unknown', pending: all.filter((a) => a.status === 'pending') };
    }
    const pending = all.filter((a) => a.status === 'pending');
    if (pending.length > 1) return { kind: 'ambiguous', pending };
    return all[0] ? { kind: 'one', approval: all[0] } : { kind: 'none' };
  }

  /**
   * Who may decide an approval besides the self-approval rule: its explicit approvers, else its
   * project's owners, read live — the list `decide` checks. Accepts a stored or a presented approval.
   */
  async deciders(a: { approvers?: string[] | null; approversSource?: 'explicit' | 'owners'; repositoryIdentifier?: string | null }): Promise<string[]> {
    const explicit = a.approversSource ? (a.approversSource === 'explicit' ? a.approvers : null) : a.approvers;
    if (explicit) return explicit;
    return a.repositoryIdentifier ? (await this.projects.find(a.repositoryIdentifier))?.owners ?? [] : [];
  }

  /** Why the person may not decide, by `decide`'s rule, or undefined; for doors that answer before deciding. */
  async refusalFor(a: Approval, person: Person, verdict: Verdict): Promise<string | undefined> {
    return refusal(a, person, verdict, await this.deciders(a));
  }

  /**
   * Records one person's decision. Refusals (not an approver, self-approval, decided) are
   * audited and raised; an accepted decision that settles the approval triggers its effects once.
   */
  async decide(id: string, person: Person, verdict: Verdict, reason: string | null, door: string): Promise<Approval> {
    const actor = { name: person.email.toLowerCase(), door };
    const as = person.as ? { as: person.as } : {};
    // Read, decide, then write only if nobody wrote in between (the row's status and decisions are
    // as read); otherwise read again. Two statements for the hot path of every click and comment,
    // where a row lock in a transaction took seven round trips; concurrent clicks still yield
    // exactly one outcome, since every write is conditional on the state it was decided from.
    for (let attempt = 1; ; attempt++) {
      const [row] = isUuid(id) ? await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where id = ?`, [id], 'flowgate-approval-get') : [];
      if (!row) throw notFound(`Approval request ${id} not found`);
      const a = rowTo<Approval>(ApprovalSchema, row);
      const seen = JSON.stringify(row.decisions);
      const now = new Date();
      const refuse = async (why: string) => this.audit.record(actor, 'approval.refused', 'approval', a.id, { verdict, reason: why, ...as });
      if (a.status === 'pending' && a.expiresAt <= now) {
        a.status = 'expired';
        a.resolvedAt = now;
        if (!(await this.write(a, seen, null))) continue;
        await this.effects.decided(a);
        await this.effects.changed(a);
        const why = `Approval request expired at ${a.expiresAt.toISOString()}`;
        await refuse(why);
        throw conflict(why, { approval: presentApproval(a, null) });
      }
      if (a.status !== 'pending') {
        const why = `Approval request already ${a.status}`;
        await refuse(why);
        throw conflict(why, { approval: presentApproval(a, null) });
      }
      const forbiddenWhy = refusal(a, person, verdict, await this.deciders(a));
      if (forbiddenWhy) {
        await refuse(forbiddenWhy);
        throw forbidden(forbiddenWhy);
      }
      const before = a.decisions.length;
      const changed = applyDecision(a, person, verdict, reason, door, now);
      const entry = { actor, action: changed ? `approval.${a.status}` : 'approval.vote', details: { verdict, reason, runId: a.runId ?? undefined, ...as } };
      if (!changed && a.decisions.length === before) {
        // A repeated approval by the same person changes nothing to write; it is audited all the same.
        await this.audit.record(actor, entry.action, 'approval', a.id, entry.details);
        await this.effects.changed(a);
        return a;
      }
      const written = await this.write(a, seen, { entry, wake: changed });
      if (!written) {
        if (attempt >= MAX_DECIDE_ATTEMPTS) throw conflict(`Approval request ${id} is being decided by others right now; try again`);
        continue;
      }
      // The statement woke a v2 run and queued its thread's notice; anything else goes the general way.
      if (written.woke || written.noticed) this.effects.told?.(written);
      if (!written.woke && changed) await this.effects.decided(a);
      if (!written.noticed) await this.effects.changed(a);
      return a;
    }
  }

  /**
   * Writes a decision (or expiry) if the approval is still pending with the decisions it was read
   * with. With `also`: audited, the waiting v2 run woken (when decided) and its thread's notice
   * queued, in the same statement. Null when someone else wrote first.
   */
  private async write(a: Approval, seenDecisions: string, also: { entry: AuditEntry; wake: boolean } | null): Promise<{ woke: boolean; noticed: boolean } | null> {
    const update = `update approvals set status = ?, decisions = ?::jsonb, resolved_by = ?, resolved_at = ?, reason = ?
      where id = ? and status = 'pending' and decisions = ?::jsonb returning id, run_id`;
    const params = [a.status, JSON.stringify(a.decisions), a.resolvedBy ?? null, a.resolvedAt ?? null, a.reason ?? null, a.id, seenDecisions];
    if (!also) return (await sql(this.orm, update, params)).length ? { woke: false, noticed: false } : null;
    const mark = this.effects.notifyMark?.() ?? '';
    const [r] = await sql<{ written: number; woke: number; noticed: number }>(this.orm,
      `with u as (${update}),
         audited as (${AUDIT_INSERT_SELECT} from u),
         woke as (${signalRuns(`?::boolean and id = (select run_id from u)`)} returning id),
         noticed as (insert into notices (run_id, kind, approval_id) select r.id, 'approval.updated', u.id from u join runs r on r.id = u.run_id where ${toldThroughOutbox('r')} returning id)
       select (select count(*) from u)::int as written, (select count(*) from woke)::int as woke, (select count(*) from noticed)::int as noticed,
         (select count(*) from (select pg_notify('flowgate_wake', ?) from woke) w)::int as woke_told,
         (select count(*) from (select pg_notify('flowgate_notice', ?) from noticed) n)::int as notice_told`,
      [...params, ...auditParams(also.entry, 'approval'), also.wake, mark, mark], 'flowgate-approval-decide');
    return r.written ? { woke: r.woke > 0, noticed: r.noticed > 0 } : null;
  }

  /**
   * A decision over an API whose caller names the deciding email in the body: it must be the
   * person the credential belongs to. Refusals are audited like every other refusal.
   */
  async decideClaimed(id: string, caller: Pick<Principal, 'name' | 'email' | 'accountId'>, claimedEmail: string, displayName: string, verdict: Verdict, reason: string | null, door: string): Promise<Approval> {
    const refuse = async (why: string) => {
      await this.audit.record({ name: caller.email ?? `token:${caller.name}`, door }, 'approval.refused', 'approval', id, { verdict, reason: why, as: callerLabel(caller) });
      return forbidden(why);
    };
    if (!caller.email) throw await refuse(`Token "${caller.name}" is not bound to a person (no email), so it cannot decide approvals`);
    if (claimedEmail.toLowerCase() !== caller.email.toLowerCase())
      throw await refuse(`${verdict === 'approve' ? 'approverEmail' : 'rejectorEmail'} ${claimedEmail} does not match the person of this token (${caller.email})`);
    return this.decide(id, { email: caller.email, name: displayName, as: callerLabel(caller) }, verdict, reason, door);
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
    // Usually none: read with plain SQL (a run's end asks this of every run with an approval step).
    const rows = await sql(this.orm, `select ${APPROVAL_COLUMNS} from approvals where run_id = any(?::uuid[]) and status = 'pending'`, [runIds], 'flowgate-approvals-pending-of-runs');
    if (!rows.length) return [];
    const pending = rows.map((r) => rowTo<Approval>(ApprovalSchema, r));
    const em = this.orm.em.fork();
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

  /**
   * Closes a pending step approval because its step was controlled from outside: skipped (the
   * approval is rejected, with the reason) or run again (cancelled). Not a vote: nobody's approval
   * rights are used, and rejecting never lets anything through. Null when it was not pending.
   */
  async closeByControl(id: string, status: 'rejected' | 'cancelled', actor: Actor, reason: string): Promise<Approval | null> {
    const em = this.orm.em.fork();
    const n = await em.nativeUpdate(Approval, { id, status: 'pending' }, { status, resolvedAt: new Date(), resolvedBy: actor.name, reason });
    if (!n) return null;
    const a = (await this.get(id))!;
    await this.audit.record(actor, `approval.${status}`, 'approval', id, { runId: a.runId, stepRef: a.stepRef, reason, by: 'run control' });
    await this.effects.changed(a);
    return a;
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

  /**
   * External approvals with a webhook decided (or expired) in the last ten minutes, at least ten
   * seconds ago: the sweep starts the delivery of any whose delivery never started (a process that
   * died between committing the decision and starting it).
   */
  async decidedExternalRecently(limit = 200): Promise<Approval[]> {
    const rows = await sql(this.orm,
      `select ${APPROVAL_COLUMNS} from approvals where run_id is null and status <> 'pending' and callback->>'type' = 'webhook'
         and resolved_at between now() - interval '10 minutes' and now() - interval '10 seconds' order by resolved_at limit ?`, [limit]);
    return rows.map((r) => rowTo<Approval>(ApprovalSchema, r));
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
