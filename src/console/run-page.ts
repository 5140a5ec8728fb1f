import type { Services } from '../container.js';
import type { ConsoleIdentity } from '../core/identity/console-sessions.js';
import { statusOf } from '../core/runs/step-control.js';
import type { StepStatus } from '../core/status.js';
import type { Approval } from '../db/entities/approval.js';
import { readLogTail, type StreamLine } from '../core/logs/log-stream.js';
import type { Run } from '../db/entities/run.js';
import type { StepAttempt, StepRun } from '../db/entities/step-run.js';
import { sql } from '../db/sql.js';
import { runActions, stepActions, type RunActions, type StepActions } from './run-actions.js';
import { decisionTimeline, type TimelineEntry } from './run-timeline.js';
import { layoutSteps, type GraphLayout, type GraphStep } from './step-graph.js';

/** The browser keeps at most this many log lines; the page starts with the last of them (the download has all). */
export const LOG_TAIL = 5_000;

export interface StepView {
  ref: string;
  name: string | null;
  kind: string;
  dependsOn: string[];
  compensates: string | null;
  status: StepStatus;
  /** Whether the engine reached the step (it has a row). */
  reached: boolean;
  attempt: number;
  attempts: StepAttempt[];
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The step's `with` as defined (templates as written: the engine does not keep them rendered). */
  inputs: Record<string, unknown> | null;
  output: unknown;
  error: string | null;
  waitingFor: string | null;
  overriddenBy: string | null;
  actions: StepActions;
}

export interface RunPageData {
  run: Run;
  /** The door the run was started from (`rest`, `slack`, `web`…), from its start's audit record. */
  door: string | null;
  steps: StepView[];
  graph: GraphLayout;
  children: Run[];
  approvals: Approval[];
  timeline: TimelineEntry[];
  /** The last LOG_TAIL lines of the run and its child runs, by time. */
  lines: StreamLine[];
  /** Lines before the first shown were left out (only the last LOG_TAIL are shown). */
  linesCut: boolean;
  /** Where the live log goes on after the lines shown (a log offset of the run tree). */
  linesOffset: string;
  actions: RunActions;
}

/** The step rows with the definition's steps that have none yet, in definition order (rows of steps no longer defined last). */
export function stepViews(run: Run, rows: StepRun[], actions: RunActions): StepView[] {
  const defined = run.definition?.steps ?? [];
  const byRef = new Map(rows.map((r) => [r.stepRef, r]));
  const controlRows = rows.map((r) => ({ ref: r.stepRef, status: r.status, error: r.error ?? null, overriddenBy: r.overriddenBy ?? null, waitingFor: r.waitingFor ?? null }));
  const view = (ref: string, kind: string, def?: (typeof defined)[number]): StepView => {
    const row = byRef.get(ref);
    const status = statusOf(controlRows, ref);
    return {
      ref, name: def?.name ?? null, kind: row?.kind ?? kind, dependsOn: def?.dependsOn ?? [], compensates: def?.compensates ?? null,
      status, reached: !!row, attempt: row?.attempt ?? 0, attempts: row?.attempts ?? [], startedAt: row?.startedAt ?? null, finishedAt: row?.finishedAt ?? null,
      inputs: def?.with ?? null, output: row?.output ?? null, error: row?.error ?? null, waitingFor: row?.waitingFor ?? null, overriddenBy: row?.overriddenBy ?? null,
      // A step no longer in the definition cannot be controlled (the core would answer "not found").
      actions: def ? stepActions(actions, def.type, status) : { skip: false, forceComplete: false, retry: false },
    };
  };
  const known = new Set(defined.map((d) => d.ref));
  return [
    ...defined.map((d) => view(d.ref, d.type, d)),
    ...rows.filter((r) => !known.has(r.stepRef)).map((r) => view(r.stepRef, r.kind)),
  ];
}

export const graphOf = (steps: StepView[]): GraphLayout => layoutSteps(steps.map((s): GraphStep => ({
  ref: s.ref, kind: s.kind, dependsOn: s.dependsOn, status: s.status, reached: s.reached, compensates: s.compensates ?? undefined,
})));

/** Everything the run page shows, read in a few statements. */
export async function runPageData(s: Services, run: Run, viewer: ConsoleIdentity): Promise<RunPageData> {
  const [rows, children, approvals, started, actions, tail] = await Promise.all([
    s.store.steps(run.id),
    s.store.children(run.id),
    s.approvals.forRuns([run.id]),
    sql<{ door: string }>(s.orm, `select door from audit_events where target_type = 'run' and target_id = ? and action in ('run.started', 'run.retried') order by at limit 1`, [run.id]),
    runActions(s, run, viewer),
    readLogTail(s.orm, run.id, LOG_TAIL),
  ]);
  const steps = stepViews(run, rows, actions);
  const oldestFirst = [...approvals].sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime());
  return {
    run, door: started[0]?.door ?? null, steps, graph: graphOf(steps), children, approvals: oldestFirst,
    timeline: await decisionTimeline(s, oldestFirst), lines: tail.lines, linesCut: tail.cut, linesOffset: tail.offset, actions,
  };
}
