import { z } from 'zod';
import type { Approval } from '../../db/entities/approval.js';
import type { Callback, Run } from '../../db/entities/run.js';
import { presentApproval } from '../../core/approvals/present-approval.js';
import { actorOf, requireProjectAccess, type Principal } from '../../core/identity/principal.js';
import { isUuid } from '../../core/ids.js';
import type { Services } from '../../container.js';
import { badRequest, notFound, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { sfpStatus } from './present.js';
import { repositoryIdentifier } from './schemas.js';
import { READ_ROLES } from '../../core/identity/roles.js';

const ALL = ['owner', 'member', 'application'] as const;
const DECIDERS = ['owner', 'member'] as const;
const idParams = z.object({ id: z.string().min(1).max(200) });

const externalCallback = z.object({
  type: z.enum(['github', 'slack', 'webhook', 'none']),
  repositoryIdentifier: repositoryIdentifier.optional(),
  issueNumber: z.number().int().positive().optional(),
  channel: z.string().min(1).optional(),
  threadTs: z.string().min(1).optional(),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
}).superRefine((c, ctx) => {
  if (c.type === 'webhook' && !c.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when type is webhook' });
  if (c.type === 'github' && (!c.repositoryIdentifier || !c.issueNumber)) ctx.addIssue({ code: 'custom', path: ['issueNumber'], message: 'repositoryIdentifier and issueNumber are required when type is github' });
  if (c.type === 'slack' && (!c.channel || !c.threadTs)) ctx.addIssue({ code: 'custom', path: ['threadTs'], message: 'channel and threadTs are required when type is slack' });
});

const createBody = z.object({
  taskId: z.string().min(1, 'required'),
  engine: z.enum(['hatchet']).default('hatchet'),
  hatchetRunId: z.string().min(1).optional(),
  hatchetEventKey: z.string().min(1).optional(),
  requestedBy: z.string().min(1, 'required'),
  context: z.object({
    taskType: z.string().optional(), username: z.string().optional(), accessLevel: z.string().optional(),
    targetOrg: z.string().optional(), durationMinutes: z.number().optional(),
  }).catchall(z.unknown()),
  callback: externalCallback.optional(),
  approvers: z.array(z.email()).optional(),
  timeoutHours: z.number().positive().max(24 * 90).default(24),
  quorum: z.number().int().min(1).max(50).default(1),
  allowSelfApproval: z.boolean().default(false),
  /** The project whose owners approve by default (else the callback's repository). */
  repositoryIdentifier: repositoryIdentifier.optional(),
});

const approveBody = z.object({ approver: z.string().min(1, 'required'), approverEmail: z.email(), reason: z.string().max(2000).optional() });
const rejectBody = z.object({ rejector: z.string().min(1, 'required'), rejectorEmail: z.email(), reason: z.string().max(2000).optional() });

function toCallback(c: z.infer<typeof externalCallback> | undefined): Callback | null {
  if (!c) return null;
  if (c.type === 'webhook') return { type: 'webhook', webhook: { url: c.url } };
  if (c.type === 'github') return { type: 'github', github: { repositoryIdentifier: c.repositoryIdentifier, issueNumber: c.issueNumber } };
  if (c.type === 'slack') return { type: 'slack', slack: { channel: c.channel, threadTs: c.threadTs } };
  return { type: 'none' };
}

export function approvalRoutes(s: Services) {
  const present = async (a: Approval) => presentApproval(a, await s.approvals.deciders(a));
  const checkAccess = (p: Principal, a: Approval) => {
    if (a.repositoryIdentifier) requireProjectAccess(p, a.repositoryIdentifier);
    else if (p.projects !== null) requireProjectAccess(p, '(no project)');
  };

  /**
   * `{id}` is an approval id, a run id or an engine run id. To decide, a run id must mean one
   * pending approval: several → 409 listing them (see `decidableForRun`).
   */
  async function resolve(id: string, p: Principal, forDecision = false): Promise<{ approval: Approval; run: Run | null }> {
    const direct = isUuid(id) ? await s.approvals.get(id) : null;
    if (direct) {
      checkAccess(p, direct);
      return { approval: direct, run: direct.runId ? await s.store.findById(direct.runId) : null };
    }
    const run = await s.store.findByIdOrEngineId(id);
    if (run) requireProjectAccess(p, run.repositoryIdentifier);
    const approval = run ? await (forDecision ? s.approvals.decidableForRun(run.id) : s.approvals.forRun(run.id)) : null;
    if (!approval) throw notFound(`Approval request ${id} not found`);
    return { approval, run };
  }

  /** An orchestrator has no approval of its own: its view is its children's approvals. */
  async function orchestratorView(id: string, p: Principal) {
    const run = await s.store.findByIdOrEngineId(id);
    if (!run) return undefined;
    requireProjectAccess(p, run.repositoryIdentifier);
    if (!(await s.store.children(run.id)).length) return undefined;
    const view = await detail(null, run);
    const children = view.children as { approval: { status: string } | null }[];
    const statuses = children.map((c) => c.approval?.status).filter(Boolean);
    return { id: run.id, executionId: run.id, status: statuses.includes('pending') ? 'pending' : statuses.at(-1) ?? null, ...view };
  }

  async function detail(approval: Approval | null, run: Run | null) {
    const body: Record<string, unknown> = approval ? await present(approval) : {};
    if (run?.parentRunId) {
      const parent = await s.store.findById(run.parentRunId);
      if (parent) body.parentExecution = { id: parent.id, taskType: parent.taskType, status: sfpStatus(parent.status), triggeredBy: parent.triggeredBy, workItemRef: parent.workItemRef ?? undefined };
    }
    if (run) {
      const children = await s.store.children(run.id);
      if (children.length) {
        const approvals = await s.approvals.forRuns(children.map((c) => c.id));
        body.children = await Promise.all(children.map(async (c) => {
          const a = approvals.filter((x) => x.runId === c.id).at(-1);
          return { executionId: c.id, taskType: c.taskType, status: sfpStatus(c.status), approval: a ? await present(a) : null };
        }));
      }
    }
    return body;
  }

  /** approve and reject: the same path into `decideClaimed`, differing only in their body's names. */
  function decisionRoute<B>(verdict: 'approve' | 'reject', body: z.ZodType<B>, who: (b: B) => { email: string; name: string; reason: string | null }) {
    return route({
      method: 'post', path: `/approvals/{id}/${verdict}`, roles: DECIDERS, params: idParams, body,
      summary: verdict === 'approve' ? 'Approve a pending approval request' : 'Reject a pending approval request',
      responses: { 200: verdict === 'approve' ? 'Request approved (or the approval counted toward the quorum)' : 'Request rejected', 404: 'Approval request not found', 409: 'Already decided, or the execution has several pending approvals (listed): name one' },
      async handler({ principal, params, body: b }) {
        const { approval, run } = await resolve(params.id, principal, true);
        const { email, name, reason } = who(b);
        const decided = await s.approvals.decideClaimed(approval.id, principal, email, name, verdict, reason, 'rest');
        return { body: await detail(decided, run) };
      },
    });
  }

  const found = async (a: Approval | null, p: Principal, what: string) => {
    if (!a) throw notFound(`No approval found for ${what}`);
    checkAccess(p, a);
    return { body: await present(a) };
  };

  return [
    route({
      method: 'post', path: '/approvals', roles: ALL, body: createBody,
      summary: 'Create a pending approval request for a suspended flow',
      responses: { 201: 'Approval request created', 400: 'Invalid request' },
      async handler({ principal, body }) {
        const repo = body.repositoryIdentifier ?? body.callback?.repositoryIdentifier ?? null;
        // A thread belongs to one project: an approval posted to another project's issue could be decided there by mistake.
        if (body.callback?.repositoryIdentifier && body.repositoryIdentifier && body.callback.repositoryIdentifier !== body.repositoryIdentifier)
          throw validationFailed([{ field: 'callback.repositoryIdentifier', message: `must be the approval's project (${body.repositoryIdentifier})`, location: 'body' }]);
        if (repo) {
          requireProjectAccess(principal, repo);
          if (!(await s.projects.find(repo))) throw validationFailed([{ field: 'repositoryIdentifier', message: `project "${repo}" is not registered`, location: 'body' }]);
        } else if (principal.projects !== null) {
          throw badRequest('A token scoped to projects must name the approval\'s project', [{ field: 'repositoryIdentifier', message: 'required for project-scoped tokens', location: 'body' }]);
        }
        if (body.callback?.type === 'webhook' && !s.config.webhookSecret && !(repo && (await s.projects.find(repo))?.settings.webhookSecret))
          throw badRequest('Webhook callbacks are signed, and no webhook secret is configured for this project or server', [{ field: 'callback.url', message: 'no signing secret configured', location: 'body' }]);
        const approval = await s.approvals.openExternal({
          taskId: body.taskId, engine: body.engine, engineRunId: body.hatchetRunId, eventKey: body.hatchetEventKey,
          requestedBy: body.requestedBy, repositoryIdentifier: repo, callback: toCallback(body.callback),
        }, {
          approvers: body.approvers ?? null, quorum: body.quorum, allowSelfApproval: body.allowSelfApproval,
          timeoutHours: body.timeoutHours, context: body.context,
        }, actorOf(principal));
        return { status: 201, body: await present(approval) };
      },
    }),
    route({
      method: 'get', path: '/approvals/pending', roles: READ_ROLES, summary: 'List all pending approval requests',
      responses: { 200: 'List of pending approvals' },
      async handler({ principal }) {
        const list = await s.approvals.listPending(principal.projects);
        const approvals = await Promise.all(list.map(present));
        return { body: { approvals, count: approvals.length } };
      },
    }),
    route({
      method: 'get', path: '/approvals/by-github/{*rest}', roles: READ_ROLES,
      params: z.object({ rest: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/\d+$/, 'expected {owner}/{repo}/{issueNumber}') }),
      summary: 'Get pending approval by GitHub repository and issue number',
      description: 'The path is `{repositoryIdentifier}/{issueNumber}`; the identifier may be URL-encoded or raw.',
      responses: { 200: 'Approval request details', 404: 'No pending approval found for this issue' },
      async handler({ principal, params }) {
        const cut = params.rest.lastIndexOf('/');
        const repo = params.rest.slice(0, cut);
        const issue = Number(params.rest.slice(cut + 1));
        requireProjectAccess(principal, repo);
        return found(await s.approvals.byThread({ kind: 'github', repositoryIdentifier: repo, issueNumber: issue }), principal, `${repo}#${issue}`);
      },
    }),
    route({
      method: 'get', path: '/approvals/by-slack/{channel}/{threadTs}', roles: READ_ROLES,
      params: z.object({ channel: z.string().min(1), threadTs: z.string().min(1) }),
      summary: 'Get pending approval by Slack channel and thread timestamp',
      responses: { 200: 'Approval request details', 404: 'No pending approval found for this thread' },
      async handler({ principal, params }) {
        return found(await s.approvals.byThread({ kind: 'slack', channel: params.channel, threadTs: params.threadTs }), principal, `Slack thread ${params.channel}/${params.threadTs}`);
      },
    }),
    route({
      method: 'get', path: '/approvals/by-azure-devops', roles: READ_ROLES,
      query: z.object({ repositoryIdentifier, workItemId: z.coerce.number().int().positive() }),
      summary: 'Get approval by Azure DevOps work item',
      responses: { 200: 'Approval found', 404: 'No approval found for this work item' },
      async handler({ principal, query }) {
        requireProjectAccess(principal, query.repositoryIdentifier);
        return found(await s.approvals.byThread({ kind: 'azureDevOps', repositoryIdentifiers: [query.repositoryIdentifier], workItemId: query.workItemId }), principal, `work item ${query.workItemId} of ${query.repositoryIdentifier}`);
      },
    }),
    route({
      method: 'get', path: '/users/email-by-github/{username}', roles: READ_ROLES,
      params: z.object({ username: z.string().regex(/^[A-Za-z0-9-]{1,39}(\[bot\])?$/, 'not a GitHub username') }),
      summary: 'Get user email by GitHub username', responses: { 200: 'User email', 404: 'User not found' },
      async handler({ params }) {
        const email = await s.identities.emailByGithub(params.username);
        if (!email) throw notFound(`No identity is linked to GitHub user ${params.username}`);
        return { body: { username: params.username, email } };
      },
    }),
    route({
      method: 'get', path: '/approvals/{id}', roles: READ_ROLES, params: idParams,
      summary: 'Get approval request by approval, execution or engine run id',
      responses: { 200: 'Approval request details', 404: 'Approval request not found' },
      async handler({ principal, params }) {
        try {
          const { approval, run } = await resolve(params.id, principal);
          return { body: await detail(approval, run) };
        } catch (err) {
          const view = (err as { code?: string }).code === 'not_found' ? await orchestratorView(params.id, principal) : undefined;
          if (view) return { body: view };
          throw err;
        }
      },
    }),
    decisionRoute('approve', approveBody, (b) => ({ email: b.approverEmail, name: b.approver, reason: b.reason ?? null })),
    decisionRoute('reject', rejectBody, (b) => ({ email: b.rejectorEmail, name: b.rejector, reason: b.reason ?? null })),
  ];
}
