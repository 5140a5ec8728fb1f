import { createHash, createHmac, createPublicKey, createVerify, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';

/**
 * A small GitHub: the API calls the GitHub door and the github.* plugins make (installation tokens
 * for a JWT signed with the app's key, comments, reactions, issues, labels, commit statuses,
 * workflow dispatch, run cancel) answered and recorded, and
 * webhook deliveries signed exactly as GitHub signs them.
 */

export interface FakeRequest { method: string; path: string; headers: http.IncomingHttpHeaders; json: any; at: number }
export interface FakeComment { id: number; repo: string; issueNumber: number; body: string; edits: string[]; at: number }
export interface FakeReaction { repo: string; commentId: number; content: string }
export interface FakeIssue { repo: string; number: number; title: string; body: string | null; labels: string[] }
export interface FakeStatus { id: number; repo: string; sha: string; state: string; context: string; targetUrl: string | null; description: string | null }
export interface FakeDeployment { id: number; repo: string; ref: string; environment: string; description: string | null; payload: unknown; statuses: { id: number; state: string; environmentUrl: string | null; logUrl: string | null; description: string | null }[] }
export interface FakeDispatch { repo: string; workflow: string; ref: string; inputs: Record<string, string>; runId: number; displayTitle: string }
/** An Actions run as `GET /repos/{o}/{r}/actions/runs/{id}` shows it; a dispatch creates one, `in_progress`. */
export interface FakeWorkflowRun {
  id: number; repo: string; path: string; workflowId: number; event: string; displayTitle: string; createdAt: Date;
  status: 'queued' | 'in_progress' | 'completed'; conclusion: string | null;
}

/** A throwaway app key, generated per test run (PKCS#1, as GitHub issues them). */
export function appKey(): { privateKey: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey };
}

export function signDelivery(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

type Fault = { match: (r: FakeRequest) => boolean; status: number; times: number };

export class FakeGithub {
  readonly requests: FakeRequest[] = [];
  readonly comments = new Map<number, FakeComment>();
  readonly reactions: FakeReaction[] = [];
  readonly dispatches: FakeDispatch[] = [];
  readonly cancels: { repo: string; runId: number }[] = [];
  readonly workflowRuns = new Map<number, FakeWorkflowRun>();
  /** Issues opened through the API (or `addIssue`), by `repo#number`; labels are kept on them. */
  readonly issues = new Map<string, FakeIssue>();
  readonly statuses: FakeStatus[] = [];
  readonly deployments: FakeDeployment[] = [];
  readonly tokensIssued: { installationId: number; token: string }[] = [];
  /** Installation of the app per repository; repositories not listed are not installed (404). */
  readonly installations = new Map<string, number>();
  /**
   * Roles on repositories (`admin`, `maintain`, `write`, `triage`, `read`, `none`) by `repo:login`
   * (login lower-cased); anyone not listed has `defaultRole`, or is unknown (404) when it is null.
   */
  readonly roles = new Map<string, string>();
  defaultRole: string | null = 'write';
  url = '';
  private server?: http.Server;
  private faults: Fault[] = [];
  private nextId = 1000;
  private readonly publicKey: KeyObject;

  constructor(private readonly appId: string, publicKey: KeyObject | string) {
    this.publicKey = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        const r: FakeRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, json, at: Date.now() };
        this.requests.push(r);
        const { status, body } = this.answer(r);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Answers the next `times` matching requests with `status`. */
  fail(match: (r: FakeRequest) => boolean, status = 500, times = Infinity): void {
    this.faults.push({ match, status, times });
  }

  heal(): void {
    this.faults = [];
  }

  /** Comments posted on an issue, oldest first. */
  commentsOn(repo: string, issueNumber: number): FakeComment[] {
    return [...this.comments.values()].filter((c) => c.repo === repo && c.issueNumber === issueNumber).sort((a, b) => a.id - b.id);
  }

  /** An issue that exists already (labels can be changed on it). */
  addIssue(repo: string, number: number, labels: string[] = []): FakeIssue {
    const issue: FakeIssue = { repo, number, title: `Issue ${number}`, body: null, labels };
    this.issues.set(`${repo}#${number}`, issue);
    return issue;
  }

  reactionsTo(commentId: number): string[] {
    return this.reactions.filter((r) => r.commentId === commentId).map((r) => r.content);
  }

  /** An Actions run that no dispatch of Flowgate's created (another workflow, an older run, ...). */
  addWorkflowRun(run: Partial<FakeWorkflowRun> & { id: number; repo: string; workflow: string }): FakeWorkflowRun {
    const { workflow, ...rest } = run;
    const r: FakeWorkflowRun = {
      path: `.github/workflows/${workflow}`, workflowId: workflowIdOf(workflow), event: 'workflow_dispatch', displayTitle: workflow,
      createdAt: new Date(), status: 'in_progress', conclusion: null, ...rest,
    };
    this.workflowRuns.set(r.id, r);
    return r;
  }

  /** The Actions run finishes with `conclusion` (success, failure, cancelled, timed_out, ...). */
  concludeRun(runId: number, conclusion: string): void {
    const r = this.workflowRuns.get(runId);
    if (!r) throw new Error(`no workflow run ${runId}`);
    Object.assign(r, { status: 'completed', conclusion });
  }

  private answer(r: FakeRequest): { status: number; body?: unknown } {
    const fault = this.faults.find((f) => f.times > 0 && f.match(r));
    if (fault) {
      fault.times -= 1;
      return { status: fault.status, body: { message: 'Injected failure' } };
    }
    const path = r.path.split('?')[0];
    let m: RegExpExecArray | null;
    if ((m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path)) && r.method === 'POST') {
      if (!this.appAuthenticated(r)) return unauthorized();
      const token = `ghs_fake_${m[1]}_${this.tokensIssued.length + 1}`;
      this.tokensIssued.push({ installationId: Number(m[1]), token });
      return { status: 201, body: { token, expires_at: new Date(Date.now() + 3_600_000).toISOString(), permissions: { issues: 'write', pull_requests: 'write', actions: 'write', metadata: 'read', contents: 'read' }, repository_selection: 'all' } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/installation$/.exec(path)) && r.method === 'GET') {
      if (!this.appAuthenticated(r)) return unauthorized();
      const id = this.installations.get(m[1]);
      return id ? { status: 200, body: { id, app_id: Number(this.appId) } } : { status: 404, body: { message: 'Not Found' } };
    }
    // Everything below acts as an installation.
    if (!this.tokensIssued.some((t) => r.headers.authorization === `token ${t.token}`)) return unauthorized();
    if ((m = /^\/repos\/([^/]+\/[^/]+)$/.exec(path)) && r.method === 'GET') return { status: 200, body: { full_name: m[1], default_branch: 'main' } };
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/.exec(path)) && r.method === 'POST') {
      const c: FakeComment = { id: this.nextId++, repo: m[1], issueNumber: Number(m[2]), body: r.json.body, edits: [], at: Date.now() };
      this.comments.set(c.id, c);
      return { status: 201, body: { id: c.id, body: c.body, html_url: `https://github.example/${m[1]}/issues/${m[2]}#issuecomment-${c.id}` } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues$/.exec(path)) && r.method === 'POST') {
      if (typeof r.json?.title !== 'string' || !r.json.title) return { status: 422, body: { message: 'Validation Failed', errors: [{ resource: 'Issue', code: 'missing_field', field: 'title' }] } };
      const number = 1 + Math.max(0, ...[...this.issues.values()].filter((i) => i.repo === m![1]).map((i) => i.number), 200);
      const issue: FakeIssue = { repo: m[1], number, title: r.json.title, body: r.json.body ?? null, labels: [...new Set<string>(r.json.labels ?? [])] };
      this.issues.set(`${m[1]}#${number}`, issue);
      return { status: 201, body: { id: this.nextId++, number, title: issue.title, body: issue.body, state: 'open', labels: issue.labels.map(labelOf), html_url: `https://github.example/${m[1]}/issues/${number}` } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/labels(?:\/([^/]+))?$/.exec(path))) {
      const issue = this.issues.get(`${m[1]}#${m[2]}`);
      if (!issue) return { status: 404, body: { message: 'Not Found' } };
      if (r.method === 'GET' && !m[3]) return { status: 200, body: issue.labels.map(labelOf) };
      if (r.method === 'POST' && !m[3]) {
        if (!Array.isArray(r.json?.labels)) return { status: 422, body: { message: 'Invalid request.' } };
        for (const l of r.json.labels) if (!issue.labels.includes(l)) issue.labels.push(l);
        return { status: 200, body: issue.labels.map(labelOf) };
      }
      if (r.method === 'DELETE' && m[3]) {
        const name = decodeURIComponent(m[3]);
        if (!issue.labels.includes(name)) return { status: 404, body: { message: 'Label does not exist' } };
        issue.labels = issue.labels.filter((l) => l !== name);
        return { status: 200, body: issue.labels.map(labelOf) };
      }
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/deployments$/.exec(path)) && r.method === 'POST') {
      if (typeof r.json?.ref !== 'string' || !r.json.ref) return { status: 422, body: { message: 'Validation Failed' } };
      const d: FakeDeployment = { id: this.nextId++, repo: m[1], ref: r.json.ref, environment: r.json.environment ?? 'production', description: r.json.description ?? null, payload: r.json.payload ?? {}, statuses: [] };
      this.deployments.push(d);
      return { status: 201, body: { id: d.id, url: `${this.url}/repos/${m[1]}/deployments/${d.id}`, ref: d.ref, environment: d.environment, description: d.description, payload: d.payload } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/deployments\/(\d+)\/statuses$/.exec(path)) && r.method === 'POST') {
      const d = this.deployments.find((x) => x.repo === m![1] && x.id === Number(m![2]));
      if (!d) return { status: 404, body: { message: 'Not Found' } };
      if (!['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'].includes(r.json?.state)) return { status: 422, body: { message: 'Validation Failed' } };
      const status = { id: this.nextId++, state: r.json.state as string, environmentUrl: r.json.environment_url ?? null, logUrl: r.json.log_url ?? null, description: r.json.description ?? null };
      d.statuses.push(status);
      return { status: 201, body: { id: status.id, state: status.state, environment_url: status.environmentUrl, log_url: status.logUrl, description: status.description } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]{40})$/i.exec(path)) && r.method === 'POST') {
      if (!['error', 'failure', 'pending', 'success'].includes(r.json?.state)) return { status: 422, body: { message: 'Validation Failed' } };
      const status: FakeStatus = { id: this.nextId++, repo: m[1], sha: m[2], state: r.json.state, context: r.json.context ?? 'default', targetUrl: r.json.target_url ?? null, description: r.json.description ?? null };
      this.statuses.push(status);
      return { status: 201, body: { id: status.id, state: status.state, context: status.context, target_url: status.targetUrl, description: status.description, url: `${this.url}/repos/${m[1]}/statuses/${m[2]}` } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(path)) && r.method === 'PATCH') {
      const c = this.comments.get(Number(m[2]));
      if (!c) return { status: 404, body: { message: 'Not Found' } };
      c.edits.push(c.body);
      c.body = r.json.body;
      return { status: 200, body: { id: c.id, body: c.body } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/collaborators\/([^/]+)\/permission$/.exec(path)) && r.method === 'GET') {
      const login = decodeURIComponent(m[2]);
      const role = this.roles.get(`${m[1]}:${login.toLowerCase()}`) ?? this.defaultRole;
      if (role === null) return { status: 404, body: { message: `${login} is not a user` } };
      // `permission` is the legacy field: maintain reads as write, triage as read.
      const permission = ({ maintain: 'write', triage: 'read' } as Record<string, string>)[role] ?? role;
      return { status: 200, body: { permission, role_name: role, user: { login, id: githubUserId(login) } } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)\/reactions$/.exec(path)) && r.method === 'POST') {
      const reaction = { repo: m[1], commentId: Number(m[2]), content: r.json.content };
      const seen = this.reactions.some((x) => x.commentId === reaction.commentId && x.content === reaction.content);
      if (!seen) this.reactions.push(reaction);
      return { status: seen ? 200 : 201, body: { id: this.reactions.length, content: reaction.content } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/actions\/workflows\/([^/]+)\/dispatches$/.exec(path)) && r.method === 'POST') {
      const runId = 900_000 + this.dispatches.length;
      this.dispatches.push({ repo: m[1], workflow: decodeURIComponent(m[2]), ref: r.json.ref, inputs: r.json.inputs ?? {}, runId, displayTitle: `Flowgate ${r.json.inputs?.executionId ?? ''}` });
      this.addWorkflowRun({ id: runId, repo: m[1], workflow: decodeURIComponent(m[2]), displayTitle: `Flowgate ${r.json.inputs?.executionId ?? ''}` });
      return { status: 204 };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/actions\/workflows\/([^/]+)\/runs$/.exec(path)) && r.method === 'GET') {
      const runs = this.dispatches.filter((d) => d.repo === m![1] && d.workflow === decodeURIComponent(m![2]));
      return { status: 200, body: { total_count: runs.length, workflow_runs: runs.map((d) => ({ id: d.runId, name: d.workflow, display_title: d.displayTitle, event: 'workflow_dispatch' })) } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)\/cancel$/.exec(path)) && r.method === 'POST') {
      this.cancels.push({ repo: m[1], runId: Number(m[2]) });
      return { status: 202, body: {} };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)$/.exec(path)) && r.method === 'GET') {
      const run = this.workflowRuns.get(Number(m[2]));
      if (!run || run.repo !== m[1]) return { status: 404, body: { message: 'Not Found' } };
      return {
        status: 200,
        body: {
          id: run.id, name: run.path.split('/').pop(), display_title: run.displayTitle, path: run.path, workflow_id: run.workflowId, event: run.event,
          status: run.status, conclusion: run.conclusion, created_at: run.createdAt.toISOString(), html_url: `https://github.example/${run.repo}/actions/runs/${run.id}`,
        },
      };
    }
    return { status: 404, body: { message: `Not Found: ${r.method} ${path}` } };
  }

  /** `Authorization: Bearer <JWT>` signed (RS256) with the app's key, issued by the app id. */
  private appAuthenticated(r: FakeRequest): boolean {
    const m = /^bearer (.+)$/i.exec(String(r.headers.authorization ?? ''));
    const parts = m?.[1].split('.');
    if (!parts || parts.length !== 3) return false;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${parts[0]}.${parts[1]}`);
    if (!verifier.verify(this.publicKey, Buffer.from(parts[2], 'base64url'))) return false;
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return String(claims.iss) === this.appId && claims.exp * 1000 > Date.now();
  }
}

const labelOf = (name: string) => ({ id: 1 + [...name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1_000_000, 7), name, color: 'ededed', default: false });

const unauthorized = () => ({ status: 401, body: { message: 'Bad credentials' } });

/** A stable numeric workflow id per workflow file, as GitHub gives each workflow one. */
const workflowIdOf = (file: string) => 100 + [...file].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 7);

/** Sends a webhook delivery as GitHub does; `signature` overrides (or with null omits) the signature. */
export async function deliver(flowgateUrl: string, secret: string, event: string, payload: unknown, opts: { deliveryId?: string; signature?: string | null } = {}) {
  const body = JSON.stringify(payload);
  const deliveryId = opts.deliveryId ?? randomUUID();
  const headers: Record<string, string> = {
    'content-type': 'application/json', 'user-agent': 'GitHub-Hookshot/fake', 'x-github-event': event, 'x-github-delivery': deliveryId, 'x-github-hook-id': '1',
  };
  const signature = opts.signature === undefined ? signDelivery(secret, body) : opts.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  const res = await fetch(`${flowgateUrl}/github/webhooks`, { method: 'POST', headers, body });
  const text = await res.text();
  let json: any;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
  return { status: res.status, body: json, deliveryId };
}

let commentIds = 50_000;

/** A stable numeric user id for a login (tests pass `userId` to make a login change hands). */
export function githubUserId(login: string): number {
  return 1 + (parseInt(createHash('sha256').update(login.toLowerCase()).digest('hex').slice(0, 8), 16) % 2_000_000_000);
}

/** An `issue_comment` `created` payload. */
export function commentPayload(o: { repo?: string; issueNumber?: number; body: string; login: string; userId?: number; association?: string; commentId?: number; pullRequest?: boolean; installationId?: number; bot?: boolean }) {
  const repo = o.repo ?? 'acme/app';
  const commentId = o.commentId ?? commentIds++;
  const issueNumber = o.issueNumber ?? 1;
  return {
    action: 'created',
    issue: {
      number: issueNumber, title: 'Issue', body: '', author_association: 'OWNER', labels: [], html_url: `https://github.example/${repo}/issues/${issueNumber}`,
      ...(o.pullRequest ? { pull_request: { url: `https://api.github.example/repos/${repo}/pulls/${issueNumber}` } } : {}),
    },
    comment: { id: commentId, body: o.body, author_association: o.association ?? 'COLLABORATOR', user: { login: o.login, id: o.userId ?? githubUserId(o.login), type: o.bot ? 'Bot' : 'User' }, performed_via_github_app: null },
    repository: { full_name: repo, name: repo.split('/')[1], owner: { login: repo.split('/')[0] } },
    sender: { login: o.login, id: o.userId ?? githubUserId(o.login), type: o.bot ? 'Bot' : 'User' },
    installation: { id: o.installationId ?? 7 },
  };
}

/** An `issues` `opened` or `labeled` payload. */
export function issuePayload(o: { action: 'opened' | 'labeled'; repo?: string; issueNumber: number; body: string; login: string; userId?: number; labels: string[]; added?: string; association?: string; installationId?: number }) {
  const repo = o.repo ?? 'acme/app';
  return {
    action: o.action,
    issue: {
      number: o.issueNumber, title: 'Request', body: o.body, author_association: o.association ?? 'MEMBER', html_url: `https://github.example/${repo}/issues/${o.issueNumber}`,
      labels: o.labels.map((name) => ({ name })), user: { login: o.login },
    },
    ...(o.action === 'labeled' ? { label: { name: o.added ?? o.labels[o.labels.length - 1] } } : {}),
    repository: { full_name: repo, name: repo.split('/')[1], owner: { login: repo.split('/')[0] } },
    sender: { login: o.login, id: o.userId ?? githubUserId(o.login), type: 'User' },
    installation: { id: o.installationId ?? 7 },
  };
}
