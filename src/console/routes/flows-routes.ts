import type Router from '@koa/router';
import { z } from 'zod';
import type { Services } from '../../container.js';
import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { actorOf, canAccessProject, hasRole, requireProjectAccess } from '../../core/identity/principal.js';
import { startedByOf } from '../../core/runs/run-permissions.js';
import { coerceParams } from '../../doors/commands.js';
import { AppError, forbidden, notFound } from '../../errors.js';
import { waitingCount } from '../approval-cards.js';
import { parseFields } from '../form.js';
import { sendHtml } from '../render.js';
import { action, page, redirectTo } from '../route.js';
import { DocumentPage, FlowPage, FlowsPage } from '../views/flows.js';

const START_ROLES = ['owner', 'member', 'application'] as const;
const SCHEDULE_ROLES = ['owner'] as const;
const FlowParams = z.object({ id: z.string().min(1).max(200) });
const DocParams = z.object({ id: z.uuid('not a flow document id') });
const RevisionQuery = z.object({ revision: z.preprocess((v) => (v === '' || v === undefined ? undefined : Number(v)), z.number().int().positive('a revision number').optional()) });
const Start = z.object({ project: z.string().min(1, 'choose a project').max(200) }).catchall(z.unknown());
const ScheduleParams = z.object({ name: z.string().min(1).max(200), verb: z.enum(['pause', 'resume']) });

const mayStart = (v: ConsoleIdentity) => hasRole(v.principal, START_ROLES);

/** The flow catalogue, a form that starts a run, schedules (pause/resume) and flow documents with their revisions. */
export function mountFlowsRoutes(router: Router, s: Services): void {
  const visibleFlow = (id: string, viewer: ConsoleIdentity) => {
    const def = s.registry.listFor(viewer.principal.projects).find((d) => d.id === id);
    if (!def) throw notFound(`Flow ${id} not found`);
    return def;
  };
  const projectsFor = async (viewer: ConsoleIdentity, flowId: string) => {
    const def = s.registry.find(flowId);
    const own = (await s.projects.list(viewer.principal.projects)).map((p) => p.repositoryIdentifier);
    // A flow document's flow runs only in its own project.
    return def?.document ? own.filter((p) => p === def.document!.repositoryIdentifier) : own;
  };

  router.get('/console/flows', page(s, async ({ ctx, viewer }) => {
    const projects = viewer.principal.projects;
    const [schedules, documents, waiting] = await Promise.all([s.schedules.list(undefined, projects), s.flowDocuments.list(projects), waitingCount(s, viewer)]);
    const flows = s.registry.listFor(projects).sort((a, b) => a.id.localeCompare(b.id));
    sendHtml(ctx, FlowsPage({ viewer, flows, schedules, documents, mayStart: mayStart(viewer), mayManageSchedules: hasRole(viewer.principal, SCHEDULE_ROLES), waiting }));
  }));

  router.get('/console/flows/documents/:id', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(DocParams, ctx.params);
    const { revision } = parseFields(RevisionQuery, ctx.query);
    const doc = await s.flowDocuments.find(id);
    if (!doc || !canAccessProject(viewer.principal, doc.repositoryIdentifier)) throw notFound(`Flow document ${id} not found`);
    const [revisions, shown, waiting] = await Promise.all([s.flowDocuments.revisions(id), revision ? s.flowDocuments.revision(id, revision) : null, waitingCount(s, viewer)]);
    if (revision && !shown) throw notFound(`Flow document ${id} has no revision ${revision} (kept: ${revisions.map((r) => r.revision).join(', ')})`);
    sendHtml(ctx, DocumentPage({ viewer, doc, revisions, shown, waiting }));
  }));

  router.get('/console/flows/:id', page(s, async ({ ctx, viewer }) => {
    const { id } = parseFields(FlowParams, ctx.params);
    const flow = visibleFlow(id, viewer);
    sendHtml(ctx, FlowPage({ viewer, flow, projects: await projectsFor(viewer, id), mayStart: mayStart(viewer), waiting: await waitingCount(s, viewer) }));
  }));

  router.post('/console/flows/:id/run', action(s, async ({ ctx, viewer, form }) => {
    const { id } = parseFields(FlowParams, ctx.params);
    const flow = visibleFlow(id, viewer);
    if (!mayStart(viewer)) throw forbidden(`${viewer.principal.name} (${viewer.principal.platformRole ?? viewer.principal.role}) may not start runs`);
    const { project } = parseFields(Start, form);
    requireProjectAccess(viewer.principal, project);
    // Empty fields are left out, so the flow's defaults apply; values are typed as chat commands type them.
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (k.startsWith('param.') && typeof v === 'string' && v.trim() !== '') raw[k.slice('param.'.length)] = v;
    const { params, problems } = coerceParams(flow, raw);
    const again = async (problem: string, fields: Array<{ field: string; message: string }>, status: number) =>
      sendHtml(ctx, FlowPage({ viewer, flow, projects: await projectsFor(viewer, id), mayStart: true, values: raw, project, problem, fields, waiting: await waitingCount(s, viewer) }), status);
    if (problems.length) return again('Some parameters are not valid', problems.map((p) => ({ field: p.split(':')[0], message: p.slice(p.indexOf(':') + 1).trim() })), 400);
    try {
      const run = await s.runs.start({ payload: { ...params, id: flow.id }, repositoryIdentifier: project, triggeredBy: startedByOf(viewer.principal), callback: null }, actorOf(viewer.principal, 'web'));
      redirectTo(ctx, `/console/runs/${run.id}`);
    } catch (err) {
      // The start form is shown again with what was typed and the core's words for what is wrong.
      if (err instanceof AppError && err.status < 500 && err.status !== 403)
        return again(err.message, err.details.map((d) => ({ field: d.field.replace(/^payload\./, ''), message: d.message })), err.status);
      throw err;
    }
  }));

  router.post('/console/schedules/:name/:verb', action(s, async ({ ctx, viewer }) => {
    const { name, verb } = parseFields(ScheduleParams, ctx.params);
    if (!hasRole(viewer.principal, SCHEDULE_ROLES)) throw forbidden(`${viewer.principal.name} may not pause or resume schedules: owners only`);
    const schedule = await s.schedules.get(name);
    const repo = schedule.context.repositoryIdentifier;
    if (repo ? !canAccessProject(viewer.principal, repo) : viewer.principal.projects !== null) throw notFound(`Cron schedule ${name} not found`);
    await s.schedules.setEnabled(name, verb === 'resume', actorOf(viewer.principal, 'web'));
    redirectTo(ctx, '/console/flows#schedules');
  }));
}
