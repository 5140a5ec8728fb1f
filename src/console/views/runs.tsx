import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { RUN_STATUSES } from '../../core/status.js';
import type { Run } from '../../db/entities/run.js';
import type { RunsFilter } from '../runs-list.js';
import { Csrf, Page, Status, Time } from './layout.js';

export const DOORS = [
  { value: 'rest', label: 'REST / CLI' },
  { value: 'slack', label: 'Slack' },
  { value: 'github', label: 'GitHub' },
  { value: 'azure-devops', label: 'Azure DevOps' },
  { value: 'webhook', label: 'Webhook' },
];

const day = (d?: Date) => (d ? d.toISOString().slice(0, 10) : '');
const doorOf = (r: Run) => (r.callback?.type && r.callback.type !== 'none' ? r.callback.type : 'rest');

/** The URL of this list with its filters and another page position. */
export function runsUrl(f: RunsFilter, before?: string | null): string {
  const q = new URLSearchParams();
  for (const st of f.status) q.append('status', st);
  if (f.flow) q.set('flow', f.flow);
  if (f.project) q.set('project', f.project);
  if (f.requester) q.set('requester', f.requester);
  if (f.door) q.set('door', f.door);
  if (f.since) q.set('since', day(f.since));
  if (f.until) q.set('until', day(new Date(f.until.getTime() - 86_400_000)));
  if (before) q.set('before', before);
  const text = q.toString();
  return `/console/runs${text ? `?${text}` : ''}`;
}

export interface RunsPageProps {
  viewer: ConsoleIdentity;
  filter: RunsFilter;
  runs: Run[];
  next: string | null;
  flows: string[];
  projects: string[];
  waiting: number;
}

export function RunsPage({ viewer, filter, runs, next, flows, projects, waiting }: RunsPageProps) {
  return (
    <Page title="Runs" viewer={viewer} section="runs" waiting={waiting}>
      <form method="get" action="/console/runs" class="filters" role="search" aria-label="Filter runs">
        <div>
          <label for="f-status">Status</label>
          <select id="f-status" name="status" multiple size={4}>
            {RUN_STATUSES.map((st) => <option value={st} selected={filter.status.includes(st)}>{st.replace(/_/g, ' ')}</option>)}
          </select>
        </div>
        <div>
          <label for="f-flow">Flow type</label>
          <select id="f-flow" name="flow">
            <option value="">any</option>
            {flows.map((f) => <option value={f} selected={filter.flow === f}>{f}</option>)}
          </select>
        </div>
        <div>
          <label for="f-project">Project</label>
          <select id="f-project" name="project">
            <option value="">any</option>
            {projects.map((p) => <option value={p} selected={filter.project === p}>{p}</option>)}
          </select>
        </div>
        <div>
          <label for="f-requester">Requester (email)</label>
          <input id="f-requester" name="requester" value={filter.requester ?? ''} />
        </div>
        <div>
          <label for="f-door">Door</label>
          <select id="f-door" name="door">
            <option value="">any</option>
            {DOORS.map((d) => <option value={d.value} selected={filter.door === d.value}>{d.label}</option>)}
          </select>
        </div>
        <div>
          <label for="f-since">From</label>
          <input id="f-since" name="since" type="date" value={day(filter.since)} />
        </div>
        <div>
          <label for="f-until">To</label>
          <input id="f-until" name="until" type="date" value={filter.until ? day(new Date(filter.until.getTime() - 86_400_000)) : ''} />
        </div>
        <button type="submit">Filter</button>
        <a href="/console/runs">Clear</a>
      </form>
      <form method="post" action="/console/runs/bulk">
        <Csrf viewer={viewer} />
        <table>
          <caption class="muted">{runs.length ? `Newest first; ${runs.length} shown.` : 'No runs match.'}</caption>
          <thead>
            <tr>
              <th scope="col"><span class="sr">Select</span></th>
              <th scope="col">Run</th>
              <th scope="col">Flow</th>
              <th scope="col">Status</th>
              <th scope="col">Project</th>
              <th scope="col">Requested by</th>
              <th scope="col">Door</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr data-run={r.id}>
                <td><input type="checkbox" name="run" value={r.id} aria-label={`Select run ${r.id}`} /></td>
                <td><a href={`/console/runs/${r.id}`}><code>{r.id.slice(0, 8)}</code></a></td>
                <td>{r.taskType}</td>
                <td><Status status={r.status} /></td>
                <td>{r.repositoryIdentifier}</td>
                <td>{r.triggeredBy}</td>
                <td>{doorOf(r)}</td>
                <td><Time at={r.createdAt} /></td>
              </tr>
            ))}
          </tbody>
        </table>
        {runs.length > 0 && (
          <fieldset class="bulk">
            <legend>With the selected runs</legend>
            <button type="submit" name="action" value="cancel" class="danger">Cancel selected</button>
            <button type="submit" name="action" value="rerun">Rerun selected</button>
          </fieldset>
        )}
      </form>
      <nav class="pager" aria-label="Pages">
        {filter.before ? <a href={runsUrl(filter)}>Newest</a> : null}
        {next ? <a href={runsUrl(filter, next)} rel="next">Older runs</a> : null}
      </nav>
    </Page>
  );
}

export interface BulkOutcome { id: string; ok: boolean; text: string; newRunId?: string }

export function BulkResultPage({ viewer, action, outcomes, back }: { viewer: ConsoleIdentity; action: string; outcomes: BulkOutcome[]; back: string }) {
  const done = outcomes.filter((o) => o.ok).length;
  return (
    <Page title={`${action === 'cancel' ? 'Cancel' : 'Rerun'}: ${done} of ${outcomes.length} done`} viewer={viewer} section="runs">
      <table>
        <thead><tr><th scope="col">Run</th><th scope="col">Result</th></tr></thead>
        <tbody>
          {outcomes.map((o) => (
            <tr>
              <td><a href={`/console/runs/${o.id}`}><code>{o.id.slice(0, 8)}</code></a></td>
              <td>
                <span class={o.ok ? 'ok' : 'refused'}>{o.ok ? 'Done: ' : 'Not done: '}</span>{o.text}
                {o.newRunId ? <> — <a href={`/console/runs/${o.newRunId}`}>new run</a></> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p><a href={back}>Back to the runs</a></p>
    </Page>
  );
}

/** Cancelling many runs is destructive: the list's button lands here first. */
export function ConfirmBulkPage({ viewer, ids }: { viewer: ConsoleIdentity; ids: string[] }) {
  return (
    <Page title={`Cancel ${ids.length} run${ids.length === 1 ? '' : 's'}?`} viewer={viewer} section="runs">
      <form method="post" action="/console/runs/bulk" class="card">
        <Csrf viewer={viewer} />
        <p>These runs stop, with everything they started; compensating steps run where their flows define them.</p>
        <ul>{ids.map((id) => <li><code>{id}</code><input type="hidden" name="run" value={id} /></li>)}</ul>
        <input type="hidden" name="confirmed" value="yes" />
        <button type="submit" name="action" value="cancel" class="danger">Yes, cancel them</button>
        <a href="/console/runs">No, go back</a>
      </form>
    </Page>
  );
}
