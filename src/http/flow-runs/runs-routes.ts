import type { Services } from '../../container.js';
import { isUuid } from '../../core/ids.js';
import { actorOf, canAccessProject } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import { runIdOfName, type ExternalExecution, type FlowRunLabel } from '../../core/runs/flow-run-records.js';
import { runsInOrder, runWindow, type RunBound } from '../../core/runs/run-page-query.js';
import { countRuns } from '../../core/runs/run-query.js';
import { startedByOf } from '../../core/runs/run-permissions.js';
import { isTerminalRun, type RunStatus } from '../../core/status.js';
import type { Run } from '../../db/entities/run.js';
import { AppError, conflict, notFound, validationFailed } from '../../errors.js';
import { route } from '../route.js';
import { argsOf, DECLINED, presentRuns, RUN_STATUS_OF, runPhase, STEP_STATUS_OF, LIST_LOG_TAIL } from './present.js';
import {
  createBody, encodeCursor, errorSchema, flowRunSchema, listQuery, pageSchema, readParams, tagMap, upsertBody, writeParams, type UpsertBody,
} from './schemas.js';
import { callerNumber, CONTROL_ROLES, idTaken, projectOf, visibleFlowRun } from './visible-run.js';

const invalid = (what: string) => ({ description: what, schema: errorSchema });

/** JSON with its keys in order: two documents with the same content compare equal. */
const canonical = (v: unknown): string => JSON.stringify(v, (_k, x) =>
  x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x);

/** What an external recorder's PUT makes of its run's execution: the whole record, except a log only grows. */
function executionOf(b: UpsertBody, current: RunStatus): ExternalExecution {
  return {
    status: b.phase ? RUN_STATUS_OF[b.phase] : current,
    error: b.phase === 'declined' ? DECLINED : null,
    payload: b.args ?? {},
    result: b.outputs ?? {},
    tags: tagMap(b.tags),
    startedAt: b.startTime ?? null,
    finishedAt: b.endTime ?? null,
    steps: (b.actions ?? []).map((a) => ({
      ref: a.id, status: STEP_STATUS_OF[a.phase ?? 'pending'], waitingFor: a.phase === 'waitingForApproval' ? 'approval' : null,
      error: a.phase === 'declined' ? DECLINED : null, startedAt: a.startTime ?? null, finishedAt: a.endTime ?? null,
    })),
    lines: (b.logs ?? []).map((l) => ({ at: l.timestamp ?? null, level: l.level, step: l.action ?? null, message: l.message })),
  };
}

/** The other way from a bound: where an empty page's neighbours start. */
const flip = (b: RunBound): RunBound => ({ position: b.position, direction: b.direction === 'forward' ? 'backward' : 'forward', inclusive: !b.inclusive });

export function flowRunRoutes(s: Services) {
  const reread = async (id: string, name: string): Promise<Run> => {
    const run = await s.store.findById(id);
    if (!run) throw notFound(`Flow run ${name} not found`);
    return run;
  };
  const present = async (run: Run) => (await presentRuns(s, [run], true))[0];

  /**
   * A PUT of a run whose execution is not the caller's to write (Flowgate executes it, or it has
   * ended): it may relabel the run, but not contradict what ran.
   */
  async function requireSameExecution(run: Run, b: UpsertBody, name: string): Promise<void> {
    const ours = run.engine !== 'external';
    if (b.flowId !== run.taskType && b.flowId !== run.requestedTaskType)
      throw conflict(`Flow run ${name} is a run of ${run.taskType}: its flowId cannot change`);
    if (b.phase) {
      const now = runPhase(run, await s.approvals.forRuns([run.id]));
      if (b.phase !== now) {
        throw conflict(ours
          ? `Flowgate executes flow run ${name}: its phase follows its execution (it is ${now}); a run is cancelled through the workflow-runs or sfp API`
          : `Flow run ${name} has ended (${now}): its record is final`);
      }
    }
    if (b.args && canonical(b.args) !== canonical(argsOf(run)))
      throw conflict(`Flow run ${name} ${ours ? 'is executed by Flowgate' : 'has ended'}: its args cannot change`);
  }

  return [
    route({
      method: 'get', path: '', roles: READ_ROLES, query: listQuery,
      summary: 'Get Flow Runs',
      description: 'The runs of every project the token may access, newest first, whichever API or door started them. A cursor page: '
        + '`next_page`/`previous_page` continue either way, `current_page`/`current_page_backwards` fetch the page again from its first or '
        + `last run; null where there is no such page. \`total\` counts the runs (an estimate above 10000). A list shows the last ${LIST_LOG_TAIL} log lines of each run.`,
      responses: { 200: { description: 'A page of flow runs', schema: pageSchema }, 422: invalid('Invalid `cursor` or `size`') },
      async handler({ principal, query }) {
        const [window, count] = await Promise.all([
          runWindow(s.orm, { projects: principal.projects, limit: query.size, bound: query.cursor }),
          countRuns(s.orm, principal.projects),
        ]);
        const items = await presentRuns(s, await runsInOrder(s.orm, window.runs.map((r) => r.id)), false);
        const first = window.runs[0]?.position;
        const last = window.runs.at(-1)?.position;
        const edge = query.cursor ? encodeCursor(flip(query.cursor)) : null;
        return { body: {
          items,
          total: count.total,
          current_page: first ? encodeCursor({ position: first, direction: 'forward', inclusive: true }) : query.cursor ? encodeCursor(query.cursor) : null,
          current_page_backwards: last ? encodeCursor({ position: last, direction: 'backward', inclusive: true }) : null,
          previous_page: window.before ? (first ? encodeCursor({ position: first, direction: 'backward', inclusive: false }) : edge) : null,
          next_page: window.after ? (last ? encodeCursor({ position: last, direction: 'forward', inclusive: false }) : edge) : null,
        } };
      },
    }),
    route({
      method: 'post', path: '', roles: CONTROL_ROLES, body: createBody,
      summary: 'Create Flow Run',
      description: 'Starts a run of the Flowgate flow type `flowId` with `args` as its parameters, as every API and door starts runs. '
        + '`id` (generated when absent) names the run in this API. `project` (an extension) is the run\'s project; it may be left out by a token of one project.',
      responses: {
        201: { description: 'The run, just started', schema: flowRunSchema },
        409: 'The id is already taken',
        422: invalid('Invalid body, an unknown or disabled flow type, invalid parameters, or an unknown project'),
        503: 'Flow engine unavailable',
      },
      async handler({ principal, body }) {
        const project = projectOf(principal, body.project);
        const name = body.id ?? null;
        const id = name ? runIdOfName(name) : undefined;
        if (id && (await s.store.findById(id))) throw idTaken(name!);
        // A preset id makes two creations of one id at once start one run (the second gets it).
        const run = await s.runs.start({
          payload: { ...(body.args ?? {}), id: body.flowId }, repositoryIdentifier: project, triggeredBy: startedByOf(principal), tags: tagMap(body.tags), id,
        }, actorOf(principal));
        await s.flowRuns.label(run.id, { name: name && !isUuid(name) ? name : null, flowType: body.flowType, updatedBy: null });
        return { status: 201, body: await present(await reread(run.id, name ?? run.id)) };
      },
    }),
    route({
      method: 'get', path: '/{id_}', roles: READ_ROLES, params: readParams,
      summary: 'Get Flow Run',
      description: 'A run by its id here (the name it was given, or its run id, which the other APIs use): its steps as `actions`, its whole log as `logs`.',
      responses: { 200: { description: 'The flow run', schema: flowRunSchema }, 404: 'No such run, or one of a project the token may not access' },
      async handler({ principal, params }) {
        return { body: await present(await visibleFlowRun(s, params.id_, principal)) };
      },
    }),
    route({
      method: 'put', path: '/{id_}', roles: CONTROL_ROLES, params: writeParams, body: upsertBody,
      summary: 'Upsert Flow Run',
      description: 'Records a run an external system executes itself (Flowgate only shows it, as the sfp API\'s external runs), or replaces its record: '
        + 'phase, times, args, outputs and actions as given; `logs` is the whole log, of which lines past those recorded are added (a log only grows); '
        + 'a null phase keeps the phase. A run that has ended, and a run Flowgate executes, keep their execution: a PUT changes their `tags` and `flowType`, '
        + 'and is refused (409) if its `flowId`, `phase` or `args` contradict the run; its times, actions, outputs and logs are not written.',
      responses: {
        200: { description: 'The flow run, updated', schema: flowRunSchema },
        201: { description: 'The flow run, recorded', schema: flowRunSchema },
        403: 'Not allowed to change this run',
        409: 'The id is taken by a run of a project the token may not access, or the body contradicts a run whose execution is not the caller\'s to write',
        422: invalid('Invalid body, or an unknown project'),
      },
      async handler({ principal, params, body }) {
        const name = params.id_;
        if (body.id && body.id !== name) throw validationFailed([{ field: 'id', message: `Value error, must be the id in the path (${name})`, location: 'body' }]);
        const id = runIdOfName(name);
        const label: FlowRunLabel = { name: isUuid(name) ? null : name, flowType: body.flowType, updatedBy: await callerNumber(s, principal) };
        let run = await s.store.findById(id);
        let created = false;
        if (!run) {
          try {
            run = await s.externalRuns.register({
              id, taskType: body.flowId, flowPath: body.flowId, repositoryIdentifier: projectOf(principal, body.project), payload: body.args ?? {}, triggeredBy: startedByOf(principal),
            }, actorOf(principal));
            created = true;
          } catch (err) {
            // Recorded by a concurrent PUT of the same id: this one updates it.
            if (!(err instanceof AppError && err.code === 'conflict')) throw err;
            run = await s.store.findById(id);
            if (!run) throw err;
          }
        }
        if (!canAccessProject(principal, run.repositoryIdentifier)) throw idTaken(name);
        if (!created) await s.runs.requireControl(run, { principal, door: 'rest' }, 'control');
        const entry = (action: string) => ({ actor: actorOf(principal), action, details: { flowRunId: name, phase: body.phase ?? null, flowType: body.flowType } });
        if (run.engine === 'external' && !isTerminalRun(run.status)) {
          const outcome = await s.flowRuns.replaceExternal(run.id, executionOf(body, run.status), label, entry('run.recorded'));
          if (outcome === null) throw notFound(`Flow run ${name} not found`);
          if (outcome === 'replaced') return { status: created ? 201 : 200, body: await present(await reread(run.id, name)) };
          // Ended since it was read: its record is final, as below.
          run = await reread(run.id, name);
        }
        await requireSameExecution(run, body, name);
        if (!(await s.flowRuns.relabel(run.id, tagMap(body.tags), label, entry('run.relabelled')))) throw notFound(`Flow run ${name} not found`);
        return { body: await present(await reread(run.id, name)) };
      },
    }),
    route({
      method: 'delete', path: '/{id_}', roles: CONTROL_ROLES, params: writeParams,
      summary: 'Delete Flow Run',
      description: 'Removes an ended run with its steps, log, approvals and the runs it started (audited). A run that has not ended, or started runs that have not, is refused: cancel it first.',
      responses: {
        204: 'Deleted', 403: 'Not allowed to delete this run', 404: 'No such run, or one of a project the token may not access',
        409: 'The run (or a run it started) has not ended', 422: invalid('Invalid id'),
      },
      async handler({ principal, params }) {
        const name = params.id_;
        const run = await visibleFlowRun(s, name, principal);
        await s.runs.requireControl(run, { principal, door: 'rest' }, 'delete');
        const gone = await s.flowRuns.removeEnded(run.id, name, {
          actor: actorOf(principal), action: 'run.deleted', details: { flowRunId: name, taskType: run.taskType, project: run.repositoryIdentifier, status: run.status },
        });
        if (!gone) throw notFound(`Flow run ${name} not found`);
        return { status: 204 };
      },
    }),
  ];
}
