import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { isTerminalRun } from '../../core/status.js';
import type { StreamLine } from '../../core/logs/log-stream.js';
import type { Run } from '../../db/entities/run.js';
import type { RunPageData, StepView } from '../run-page.js';
import { describe, type TimelineEntry } from '../run-timeline.js';
import { Csrf, Page, Problem, Status, Time } from './layout.js';
import { StepGraph } from './step-graph.js';

const json = (v: unknown) => JSON.stringify(v, null, 2);
const runUrl = (id: string) => `/console/runs/${id}`;
const stepUrl = (id: string, ref: string) => `${runUrl(id)}/steps/${encodeURIComponent(ref)}`;

/** Where a run came from, in words: the door its start came through, and the thread it reports to. */
function startedFrom(run: Run, door: string | null): string {
  const parts: string[] = [];
  if (door) parts.push(door);
  if (run.schedulePath) parts.push(`schedule ${run.schedulePath}`);
  const thread = run.callback?.type && run.callback.type !== 'none' ? run.callback.type : null;
  if (thread && thread !== door) parts.push(`reports to ${thread}`);
  return parts.length ? parts.join(' · ') : 'unknown';
}

function Facts({ run, door }: { run: Run; door: string | null }) {
  return (
    <dl class="facts run-facts">
      <dt>Flow type</dt><dd>{run.taskType}{run.requestedTaskType ? <span class="muted"> (asked for {run.requestedTaskType})</span> : null}</dd>
      <dt>Status</dt><dd data-run-status><Status status={run.status} /></dd>
      <dt>Project</dt><dd>{run.repositoryIdentifier}</dd>
      <dt>Requested by</dt><dd>{run.requestedBy ?? run.triggeredBy}{run.requestedBy && run.requestedBy !== run.triggeredBy ? <span class="muted"> (triggered by {run.triggeredBy})</span> : null}</dd>
      <dt>Started from</dt><dd>{startedFrom(run, door)}</dd>
      <dt>Created</dt><dd><Time at={run.createdAt} /></dd>
      <dt>Started</dt><dd><Time at={run.startedAt} /></dd>
      <dt>Finished</dt><dd data-run-finished><Time at={run.finishedAt} /></dd>
      {run.parentRunId ? <><dt>Parent run</dt><dd><a href={runUrl(run.parentRunId)}>{run.parentRunId}</a></dd></> : null}
      {run.rerunOfExecutionId ? <><dt>{run.rerunType === 'retry' ? 'Retry of' : 'Rerun of'}</dt><dd><a href={runUrl(run.rerunOfExecutionId)}>{run.rerunOfExecutionId}</a></dd></> : null}
      {run.workItemRef?.url ? <><dt>Work item</dt><dd><a href={run.workItemRef.url} rel="noreferrer">{run.workItemRef.key}</a></dd></> : null}
      {run.cicdRunUrl ? <><dt>Pipeline</dt><dd><a href={run.cicdRunUrl} rel="noreferrer">{run.cicdRunId ?? run.cicdRunUrl}</a></dd></> : null}
      {run.error ? <><dt>Error</dt><dd class="error-text">{run.error}</dd></> : null}
    </dl>
  );
}

/** A one-button form posting to a control route (CSRF-checked there). */
function ControlButton({ viewer, action, label, cls }: { viewer: ConsoleIdentity; action: string; label: string; cls?: string }) {
  return (
    <form method="post" action={action} class="inline">
      <Csrf viewer={viewer} />
      <button type="submit" class={cls}>{label}</button>
    </form>
  );
}

function Controls({ data, viewer }: { data: RunPageData; viewer: ConsoleIdentity }) {
  const { run, actions } = data;
  const any = actions.pause || actions.resume || actions.cancel || actions.retry;
  return (
    <section class="run-controls" aria-labelledby="controls-title">
      <h2 id="controls-title">Control</h2>
      {any ? (
        <div class="buttons">
          {actions.pause ? <ControlButton viewer={viewer} action={`${runUrl(run.id)}/pause`} label="Pause run" /> : null}
          {actions.resume ? <ControlButton viewer={viewer} action={`${runUrl(run.id)}/resume`} label="Resume run" /> : null}
          {actions.retry ? <ControlButton viewer={viewer} action={`${runUrl(run.id)}/retry`} label="Retry run (keeps completed steps)" /> : null}
          {actions.cancel ? <a class="button danger" href={`${runUrl(run.id)}/cancel`}>Cancel run…</a> : null}
        </div>
      ) : (
        <p class="muted">{actions.why ?? (isTerminalRun(run.status) ? `This run has ended (${run.status}); nothing to control.` : 'No control applies to this run in its current state.')}</p>
      )}
    </section>
  );
}

function Attempts({ step }: { step: StepView }) {
  if (!step.attempts.length) return <>{step.attempt || '—'}</>;
  return (
    <details>
      <summary>{step.attempts.length}</summary>
      <ol class="attempts">
        {step.attempts.map((a) => (
          <li>
            #{a.attempt} <Status status={a.status} /> <Time at={a.startedAt} />{a.finishedAt ? <> → <Time at={a.finishedAt} /></> : null}
            {a.error ? <div class="error-text">{a.error}</div> : null}
          </li>
        ))}
      </ol>
    </details>
  );
}

function StepRow({ step, run, viewer }: { step: StepView; run: Run; viewer: ConsoleIdentity }) {
  const { skip, forceComplete, retry } = step.actions;
  return (
    <tr id={`step-${step.ref}`} data-step={step.ref} data-status={step.status} class={step.reached ? 'reached' : 'unreached'}>
      <th scope="row">
        <code>{step.ref}</code>
        {step.name ? <div class="muted">{step.name}</div> : null}
        {step.compensates ? <div class="muted">undoes {step.compensates}</div> : null}
      </th>
      <td>{step.kind}</td>
      <td data-cell="status">
        <Status status={step.status} />
        {!step.reached ? <span class="muted"> (not reached)</span> : null}
        {step.waitingFor ? <div class="muted">waiting for {step.waitingFor}</div> : null}
        {step.overriddenBy ? <div class="muted">by {step.overriddenBy}</div> : null}
      </td>
      <td data-cell="attempts"><Attempts step={step} /></td>
      <td data-cell="started"><Time at={step.startedAt} /></td>
      <td data-cell="finished"><Time at={step.finishedAt} /></td>
      <td>{step.inputs && Object.keys(step.inputs).length ? <details><summary>inputs</summary><pre>{json(step.inputs)}</pre></details> : '—'}</td>
      <td data-cell="output">{step.output !== null && step.output !== undefined ? <details><summary>output</summary><pre>{json(step.output)}</pre></details> : '—'}</td>
      <td data-cell="error">{step.error ? <details open={step.status === 'failed'}><summary>error</summary><pre class="error-text">{step.error}</pre></details> : '—'}</td>
      {/* A flex box inside the cell, not the cell itself: a flex <td> leaves the table's grid. */}
      <td>
        <div class="step-actions">
          {retry ? <ControlButton viewer={viewer} action={`${stepUrl(run.id, step.ref)}/retry`} label={`Retry ${step.ref}`} /> : null}
          {skip ? <a class="button" href={`${stepUrl(run.id, step.ref)}/skip`}>Skip {step.ref}…</a> : null}
          {forceComplete ? <a class="button" href={`${stepUrl(run.id, step.ref)}/force-complete`}>Force-complete {step.ref}…</a> : null}
        </div>
      </td>
    </tr>
  );
}

function StepTable({ data, viewer }: { data: RunPageData; viewer: ConsoleIdentity }) {
  return (
    <table class="steps">
      <caption>Steps of this run, in definition order</caption>
      <thead>
        <tr>
          <th scope="col">Step</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Started</th>
          <th scope="col">Finished</th><th scope="col">Inputs</th><th scope="col">Output</th><th scope="col">Error</th><th scope="col"><span class="sr">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        {data.steps.map((s) => <StepRow step={s} run={data.run} viewer={viewer} />)}
      </tbody>
    </table>
  );
}

function Entry({ e }: { e: TimelineEntry }) {
  return (
    <li class={`tl tl-${e.kind}`} data-kind={e.kind} data-door={e.door}>
      <Time at={e.at} /> <span class="door">{e.door}</span>{' '}
      <strong class="who">{e.who}</strong>{e.name ? <span class="muted"> ({e.name})</span> : null}{' '}
      <span class="what">{describe(e)}</span>
      {e.stepRef ? <span class="muted"> · step <a href={`#step-${e.stepRef}`}>{e.stepRef}</a></span> : null}
      {e.as ? <div class="as muted">as {e.as}</div> : null}
      {e.reason ? (e.kind === 'refused' ? <div class="reason">Refused because: {e.reason}</div> : <div class="reason">Reason: {e.reason}</div>) : null}
    </li>
  );
}

function Timeline({ data }: { data: RunPageData }) {
  if (!data.approvals.length) return null;
  return (
    <section aria-labelledby="timeline-title">
      <h2 id="timeline-title">Decisions</h2>
      <ul class="approvals-of-run">
        {data.approvals.map((a) => (
          <li><a href={`/console/approvals/${a.id}`}>Approval{a.stepRef ? ` of step ${a.stepRef}` : ''}</a> <Status status={a.status} /> — {a.quorum} needed{a.resolvedBy ? `, decided by ${a.resolvedBy}` : ''}</li>
        ))}
      </ul>
      {data.timeline.length ? (
        <ol class="timeline" aria-label="Every vote, decision and refused attempt, oldest first">
          {data.timeline.map((e) => <Entry e={e} />)}
        </ol>
      ) : <p class="empty">Nobody has decided yet.</p>}
    </section>
  );
}

function Children({ children }: { children: Run[] }) {
  if (!children.length) return null;
  return (
    <section aria-labelledby="children-title">
      <h2 id="children-title">Child runs ({children.length})</h2>
      <ul>
        {children.map((c) => <li><a href={runUrl(c.id)}>{c.taskType}</a> <Status status={c.status} /> <Time at={c.createdAt} /></li>)}
      </ul>
    </section>
  );
}

/** A line of the run's log; a line of one of its child runs names that run (and links to it). */
export function LogLineItem({ line, runId }: { line: StreamLine; runId: string }) {
  return (
    <li data-seq={line.seq} class={`log-${line.level}`}>
      <Time at={line.timestamp} /> <span class="level">{line.level.toUpperCase()}</span>{' '}
      {line.executionId === runId ? null : <><a class="log-run" href={runUrl(line.executionId)}>{line.taskType}</a>{' '}</>}
      <span class="source">[{line.source}/{line.group}]</span> <span class="message">{line.message}</span>
    </li>
  );
}

function Logs({ data }: { data: RunPageData }) {
  const { run, lines } = data;
  const ended = isTerminalRun(run.status);
  return (
    <section class="logs" aria-labelledby="logs-title" data-live="run" data-run={run.id} data-after={data.linesOffset} data-ended={ended ? 'true' : undefined}>
      <h2 id="logs-title">Log</h2>
      <div class="log-tools">
        {ended ? null : <button type="button" data-follow>Pause following</button>}
        <a href={`${runUrl(run.id)}/logs.txt`} download>Download the whole log (text)</a>
        <span data-live-state role="status" class="muted">{ended ? 'The run has ended: this is the whole log.' : 'Live updates need JavaScript; reload to see more.'}</span>
      </div>
      {data.linesCut ? <p class="muted">Only the last {lines.length} lines are shown; earlier ones are in the download.</p> : null}
      {/* Focusable: keyboard users scroll it. */}
      <ol class="log-lines" aria-live="off" aria-label="Log lines" tabIndex={0} data-log>
        {lines.map((l) => <LogLineItem line={l} runId={run.id} />)}
      </ol>
    </section>
  );
}

export function RunPage({ viewer, data, problem }: { viewer: ConsoleIdentity; data: RunPageData; problem?: string }) {
  const { run } = data;
  return (
    <Page title={`Run of ${run.taskType}`} viewer={viewer} section="runs">
      {problem ? <Problem message={problem} /> : null}
      <p class="muted run-id">Run <code>{run.id}</code></p>
      <Facts run={run} door={data.door} />
      <Controls data={data} viewer={viewer} />
      <section aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        {data.steps.length ? <StepGraph layout={data.graph} runId={run.id} /> : null}
        {data.steps.length ? <StepTable data={data} viewer={viewer} /> : <p class="empty">This run has no steps (it runs {run.executionMode === 'cicd' ? 'in its CI/CD pipeline' : 'elsewhere'}).</p>}
      </section>
      <Timeline data={data} />
      <Children children={data.children} />
      <Logs data={data} />
    </Page>
  );
}

export type ConfirmAction = 'cancel' | 'skip' | 'force-complete';

const CONFIRM: Record<ConfirmAction, { title: string; button: string; explain: (run: Run, ref?: string) => string }> = {
  cancel: {
    title: 'Cancel this run?', button: 'Cancel the run',
    explain: (run) => `Run ${run.id} of ${run.taskType} (${run.repositoryIdentifier}) stops: running steps are cancelled, its child runs are cancelled, its pending approvals close, and compensations run if the flow has them. This cannot be undone (retry it afterwards for a new run).`,
  },
  skip: {
    title: 'Skip this step?', button: 'Skip the step',
    explain: (_run, ref) => `Step ${ref} will not run; the steps after it are released as if it had completed. Skipping an approval step rejects its approval, and the steps it gates are skipped too.`,
  },
  'force-complete': {
    title: 'Force-complete this step?', button: 'Force-complete the step',
    explain: (_run, ref) => `Step ${ref} is marked completed without running, with the output you give (none if left empty); the steps after it run with that output.`,
  },
};

/** The confirmation of a destructive control: a plain form, so it works without JavaScript. */
export function ConfirmPage({ viewer, run, action, stepRef }: { viewer: ConsoleIdentity; run: Run; action: ConfirmAction; stepRef?: string }) {
  const c = CONFIRM[action];
  const target = stepRef ? `${stepUrl(run.id, stepRef)}/${action}` : `${runUrl(run.id)}/${action}`;
  return (
    <Page title={c.title} viewer={viewer} section="runs">
      <p>{c.explain(run, stepRef)}</p>
      <form method="post" action={target} class="confirm">
        <Csrf viewer={viewer} />
        {action === 'skip' ? (
          <>
            <label for="reason">Reason (optional; shown in the log and on a rejected approval)</label>
            <input id="reason" name="reason" maxLength={2000} />
          </>
        ) : null}
        {action === 'force-complete' ? (
          <>
            <label for="result">Output as JSON (optional)</label>
            <textarea id="result" name="result" rows={6} aria-describedby="result-help" />
            <p id="result-help" class="muted">For example <code>{'{"ok": true}'}</code>. Left empty, the step completes with no output.</p>
          </>
        ) : null}
        <button type="submit" class="danger">{c.button}</button>
        <a href={stepRef ? `${runUrl(run.id)}#step-${stepRef}` : runUrl(run.id)}>Back to the run, changing nothing</a>
      </form>
    </Page>
  );
}
