import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import type { FlowDocument, FlowRevision } from '../../core/flows/flow-documents.js';
import type { FlowDefinition, Parameter } from '../../core/registry/manifest-schema.js';
import { Csrf, Page, Problem, Status, Time } from './layout.js';

export interface ScheduleView {
  name: string; flowType: string; repositoryIdentifier?: string | null; expression: string; timezone: string; enabled: boolean;
  nextFireAt: string | null; lastRun: { id: string; status: string; createdAt: string } | null; source?: string;
}

export interface FlowsPageProps {
  viewer: ConsoleIdentity;
  flows: FlowDefinition[];
  schedules: ScheduleView[];
  documents: FlowDocument[];
  mayStart: boolean;
  mayManageSchedules: boolean;
  waiting: number;
}

export function FlowsPage({ viewer, flows, schedules, documents, mayStart, mayManageSchedules, waiting }: FlowsPageProps) {
  return (
    <Page title="Flows" viewer={viewer} section="flows" waiting={waiting}>
      <section aria-labelledby="catalogue">
        <h2 id="catalogue">Catalogue ({flows.length})</h2>
        <table>
          <thead><tr><th scope="col">Flow</th><th scope="col">Category</th><th scope="col">Parameters</th><th scope="col">Description</th></tr></thead>
          <tbody>
            {flows.map((f) => (
              <tr data-flow={f.id}>
                <td><a href={`/console/flows/${encodeURIComponent(f.id)}`}>{f.id}</a>{f.name && f.name !== f.id ? <div class="muted">{f.name}</div> : null}</td>
                <td>{f.category}</td>
                <td>{f.parameters.length ? f.parameters.map((p) => `${p.name}${p.required ? '*' : ''}`).join(', ') : '—'}</td>
                <td>{f.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!mayStart ? <p class="muted">Your role may look at flows but not start them.</p> : null}
      </section>
      <section aria-labelledby="schedules">
        <h2 id="schedules">Schedules ({schedules.length})</h2>
        {schedules.length ? (
          <table>
            <thead><tr><th scope="col">Schedule</th><th scope="col">Flow</th><th scope="col">Project</th><th scope="col">When</th><th scope="col">Next</th><th scope="col">Last run</th><th scope="col">State</th></tr></thead>
            <tbody>
              {schedules.map((sc) => (
                <tr data-schedule={sc.name}>
                  <td>{sc.name}</td>
                  <td>{sc.flowType}</td>
                  <td>{sc.repositoryIdentifier ?? 'every project'}</td>
                  <td><code>{sc.expression}</code> {sc.timezone}</td>
                  <td>{sc.nextFireAt ? <Time at={sc.nextFireAt} /> : '—'}</td>
                  <td>{sc.lastRun ? <a href={`/console/runs/${sc.lastRun.id}`}><Status status={sc.lastRun.status} /></a> : '—'}</td>
                  <td>
                    {sc.enabled ? 'active' : 'paused'}
                    {mayManageSchedules && sc.source !== 'trigger' ? (
                      <form method="post" action={`/console/schedules/${encodeURIComponent(sc.name)}/${sc.enabled ? 'pause' : 'resume'}`} class="inline">
                        <Csrf viewer={viewer} />
                        <button type="submit">{sc.enabled ? `Pause ${sc.name}` : `Resume ${sc.name}`}</button>
                      </form>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <p class="empty">No schedules.</p>}
      </section>
      <section aria-labelledby="documents">
        <h2 id="documents">Flow documents ({documents.length})</h2>
        {documents.length ? (
          <table>
            <thead><tr><th scope="col">Document</th><th scope="col">Namespace</th><th scope="col">Project</th><th scope="col">Revision</th><th scope="col">Updated</th></tr></thead>
            <tbody>
              {documents.map((d) => (
                <tr>
                  <td><a href={`/console/flows/documents/${d.id}`}>{d.name}</a></td>
                  <td>{d.namespace}</td>
                  <td>{d.repositoryIdentifier}</td>
                  <td>{d.revision}</td>
                  <td><Time at={d.updatedAt} /> by {d.updatedBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <p class="empty">No flow documents.</p>}
      </section>
    </Page>
  );
}

function ParameterField({ p, value }: { p: Parameter; value?: string }) {
  const id = `p-${p.name}`;
  const help = [p.description, p.type !== 'string' ? `(${p.type}${p.type === 'array' ? ': JSON list or comma-separated' : ''})` : '', p.default !== undefined ? `default ${JSON.stringify(p.default)}` : ''].filter(Boolean).join(' ');
  const shown = value ?? '';
  return (
    <div class="field">
      <label for={id}>{p.name}{p.required ? ' (required)' : ''}</label>
      {p.enum ? (
        <select id={id} name={`param.${p.name}`} required={p.required}>
          {!p.required ? <option value="">(default)</option> : null}
          {p.enum.map((v) => <option value={String(v)} selected={shown === String(v)}>{String(v)}</option>)}
        </select>
      ) : p.type === 'boolean' ? (
        <select id={id} name={`param.${p.name}`} required={p.required}>
          {!p.required ? <option value="">(default)</option> : null}
          <option value="true" selected={shown === 'true'}>true</option>
          <option value="false" selected={shown === 'false'}>false</option>
        </select>
      ) : p.type === 'object' ? (
        <textarea id={id} name={`param.${p.name}`} required={p.required} rows={3} aria-describedby={help ? `${id}-help` : undefined}>{shown}</textarea>
      ) : (
        <input id={id} name={`param.${p.name}`} required={p.required} value={shown} inputMode={p.type === 'number' ? 'decimal' : undefined} aria-describedby={help ? `${id}-help` : undefined} />
      )}
      {help ? <p id={`${id}-help`} class="help">{help}</p> : null}
    </div>
  );
}

export interface FlowPageProps {
  viewer: ConsoleIdentity;
  flow: FlowDefinition;
  projects: string[];
  mayStart: boolean;
  values?: Record<string, string>;
  project?: string;
  problem?: string;
  fields?: Array<{ field: string; message: string }>;
  waiting: number;
}

export function FlowPage({ viewer, flow, projects, mayStart, values = {}, project, problem, fields, waiting }: FlowPageProps) {
  return (
    <Page title={flow.id} viewer={viewer} section="flows" waiting={waiting}>
      <p>{flow.description}</p>
      <dl class="facts">
        <dt>Category</dt><dd>{flow.category}</dd>
        <dt>Steps</dt><dd>{flow.steps.length ? flow.steps.map((st) => `${st.ref} (${st.type})`).join(' → ') : flow.executionMode}</dd>
        {flow.document ? <><dt>Document</dt><dd><a href={`/console/flows/documents/${flow.document.id}`}>revision {flow.document.revision}</a></dd></> : null}
      </dl>
      {problem ? <Problem message={problem} /> : null}
      {fields?.length ? <ul class="fields">{fields.map((f) => <li><code>{f.field}</code>: {f.message}</li>)}</ul> : null}
      {mayStart && projects.length ? (
        <form method="post" action={`/console/flows/${encodeURIComponent(flow.id)}/run`} class="card">
          <h2>Start a run</h2>
          <Csrf viewer={viewer} />
          <label for="project">Project</label>
          <select id="project" name="project" required>
            {projects.map((p) => <option value={p} selected={p === project}>{p}</option>)}
          </select>
          {flow.parameters.map((p) => <ParameterField p={p} value={values[p.name]} />)}
          <button type="submit">Start {flow.id}</button>
        </form>
      ) : <p class="muted">{mayStart ? 'No project of yours can run this flow.' : 'Your role may look at flows but not start them.'}</p>}
    </Page>
  );
}

export function DocumentPage({ viewer, doc, revisions, shown, waiting }: { viewer: ConsoleIdentity; doc: FlowDocument; revisions: FlowRevision[]; shown: FlowRevision | null; waiting: number }) {
  const yaml = shown ? shown.yamlContent : doc.yamlContent;
  return (
    <Page title={doc.name} viewer={viewer} section="flows" waiting={waiting}>
      <dl class="facts">
        <dt>Namespace</dt><dd>{doc.namespace}</dd>
        <dt>Project</dt><dd>{doc.repositoryIdentifier}</dd>
        <dt>Current revision</dt><dd>{doc.revision}, <Time at={doc.updatedAt} /> by {doc.updatedBy}</dd>
      </dl>
      <h2>{shown ? `Revision ${shown.revision}` : `Revision ${doc.revision} (current)`}</h2>
      <pre data-yaml>{yaml}</pre>
      <h2>Revisions</h2>
      <ol reversed>
        {revisions.map((r) => (
          <li>
            <a href={`/console/flows/documents/${doc.id}?revision=${r.revision}`} aria-current={shown?.revision === r.revision ? 'page' : undefined}>Revision {r.revision}</a>
            {' '}<Time at={r.createdAt} /> by {r.createdBy}{r.restoredFrom !== null ? ` (restored from ${r.restoredFrom})` : ''}
          </li>
        ))}
      </ol>
    </Page>
  );
}
