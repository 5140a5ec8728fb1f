import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Services } from '../../container.js';
import { canAccessProject, requireRole, type Principal } from '../../core/identity/principal.js';
import { READ_ROLES } from '../../core/identity/roles.js';
import type { LogFollower, LogState, LogWatcher } from '../../core/logs/log-follower.js';
import { isTerminalRun } from '../../core/status.js';
import type { Run } from '../../db/entities/run.js';
import { AppError, rateLimited, toAppError, unauthenticated } from '../../errors.js';
import { requireRunScope } from '../auth.js';
import type { UpgradeRoute } from '../upgrade.js';
import { validate } from '../validate.js';
import { platformEnvelope, platformStatus } from './envelope.js';
import { requireOffset } from './executions-routes.js';
import { visibleExecution } from './executions.js';
import { executionStatus, presentLogLine, type ExecutionStatus } from './present.js';
import { executionParams, streamQuery } from './schemas.js';

/** The subprotocol the server selects (a browser offers it beside `bearer.<token>`, which is never echoed). */
export const LOG_PROTOCOL = 'flowgate.logs.v1';
const PATH = /^\/api\/v1\/executions\/([^/]+)\/logs\/?$/;
const ROUTE = 'GET /api/v1/executions/{id}/logs';
/** Open streams per caller (token) on this process; one more is refused with 429. */
export const MAX_STREAMS_PER_CALLER = 20;
/** Unsent bytes a client may leave queued (and not drain within `drainWaitMs`) before it is dropped (1013). */
const MAX_UNSENT = 1024 * 1024;
const PAGE = 500;

export interface LogStreamOptions {
  pingMs?: number;
  /** No pong for this long closes the connection. */
  pongTimeoutMs?: number;
  /** How often a stream checks that its token still holds and still sees the execution. */
  recheckMs?: number;
  drainWaitMs?: number;
  /** How long a stream closed by a stopping server may take to answer the close. */
  closeWaitMs?: number;
}

const pathOf = (req: IncomingMessage) => (req.url ?? '/').split('?')[0];

/** The token: `Authorization: Bearer` where a client can set headers, else a `bearer.<token>` subprotocol (browsers). Never from the query. */
function bearerOf(req: IncomingMessage): string {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthenticated('Malformed Authorization header; expected "Bearer <token>"');
    return m[1];
  }
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const token = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
  if (!token) throw unauthenticated(`Missing bearer token: send "Authorization: Bearer <token>", or offer the subprotocols "${LOG_PROTOCOL}, bearer.<token>"`);
  return token;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * The executions' log WebSocket (`GET /api/v1/executions/{id}/logs` with `Upgrade: websocket`).
 * Everything that can refuse is decided before the upgrade and answered as plain HTTP (401, 403,
 * 404, 400, 429). A stream reads PostgreSQL only, so it works through any replica; the follower
 * wakes it when lines are committed.
 */
export class LogStreams implements UpgradeRoute {
  private readonly wss = new WebSocketServer({
    noServer: true, clientTracking: false, maxPayload: 4 * 1024,
    handleProtocols: (offered) => (offered.has(LOG_PROTOCOL) ? LOG_PROTOCOL : false),
  });
  private readonly streams = new Set<LogStream>();
  private readonly perCaller = new Map<string, number>();
  private readonly pinger: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly s: Services, private readonly follower: LogFollower, private readonly options: LogStreamOptions = {}) {
    this.pinger = setInterval(() => this.ping(), options.pingMs ?? 30_000);
    this.pinger.unref();
  }

  matches(req: IncomingMessage): boolean {
    return PATH.test(pathOf(req));
  }

  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const caller: { principal?: Principal } = {};
    this.open(req, socket, head, caller).catch((err) => this.refuse(req, socket, err, caller.principal));
  }

  /** Closes every stream (1001: reconnect with `offset` to another replica) and stops following. */
  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pinger);
    await this.follower.stop();
    this.wss.close();
  }

  private async open(req: IncomingMessage, socket: Duplex, head: Buffer, caller: { principal?: Principal }): Promise<void> {
    const secret = bearerOf(req);
    const principal = await this.s.tokens.authenticate(secret);
    if (!principal) throw unauthenticated('Invalid or revoked token');
    caller.principal = principal;
    requireRole(principal, READ_ROLES);
    requireRunScope(principal, {}, {});
    let raw: string;
    try {
      raw = decodeURIComponent(PATH.exec(pathOf(req))![1]);
    } catch {
      raw = '';
    }
    const { id } = validate(executionParams, { id: raw }, 'path');
    const query = validate(streamQuery, Object.fromEntries(new URL(req.url ?? '/', 'http://localhost').searchParams), 'query');
    const run = await visibleExecution(this.s, id, principal);
    requireOffset(run, query.offset);
    if (this.stopping) throw new AppError('service_unavailable', 'The server is stopping; connect again (with offset) to another replica');
    // Counted before the upgrade, so concurrent requests cannot pass the limit together.
    const release = this.reserve(principal);
    // The client may have gone while it was checked: its slot is free at once.
    if (socket.destroyed) return release();
    socket.once('close', release);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.s.log.info({ method: 'GET', path: pathOf(req), route: ROUTE, status: 101 }, 'request');
      this.start(ws, run, secret, query.offset);
    });
  }

  private reserve(p: Principal): () => void {
    const open = this.perCaller.get(p.tokenId) ?? 0;
    if (open >= MAX_STREAMS_PER_CALLER) throw rateLimited(`Too many log streams: token "${p.name}" has ${open} open (at most ${MAX_STREAMS_PER_CALLER}); close one first`);
    this.perCaller.set(p.tokenId, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.perCaller.get(p.tokenId) ?? 1) - 1;
      if (left > 0) this.perCaller.set(p.tokenId, left);
      else this.perCaller.delete(p.tokenId);
    };
  }

  private start(ws: WebSocket, run: Run, secret: string, offset: number): void {
    const stream = new LogStream(ws, run, secret, offset, this.s, this.options);
    this.streams.add(stream);
    this.s.metrics.logStreams.inc();
    let unwatch = () => {};
    ws.on('close', () => {
      this.streams.delete(stream);
      this.s.metrics.logStreams.dec();
      unwatch();
      stream.closed();
    });
    ws.on('error', (err) => this.s.log.debug({ err: err.message, runId: run.id }, 'log stream: connection error'));
    try {
      unwatch = this.follower.watch(stream);
    } catch {
      // The server began stopping during the handshake.
      void stream.stopping();
    }
  }

  private ping(): void {
    for (const stream of this.streams) stream.ping(this.options.pongTimeoutMs ?? 60_000);
  }

  /** A refusal as plain HTTP in the platform's envelope; the connection closes after it. */
  private refuse(req: IncomingMessage, socket: Duplex, err: unknown, principal: Principal | undefined): void {
    const e = toAppError(err);
    if (!(err instanceof AppError)) this.s.log.error({ err, route: ROUTE }, 'log stream request failed');
    const status = platformStatus(e);
    const body = JSON.stringify(platformEnvelope(e));
    const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`, 'Content-Type: application/json; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
    if (e.code === 'authentication_required') head.push('WWW-Authenticate: Bearer');
    if (e.code === 'rate_limited') head.push('Retry-After: 5');
    if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
    else socket.destroy();
    this.s.log.info({ method: 'GET', path: pathOf(req), route: ROUTE, status }, 'request');
    // As for every route (http/app.ts): strangers are counted, refusals of a known caller audited.
    if (status === 401 && !principal) this.s.metrics.unauthenticated.inc({ surface: 'rest' });
    else if (principal && (status === 401 || status === 403)) {
      this.s.audit.record({ name: principal.email ?? `token:${principal.name}`, door: 'rest' }, 'request.refused', 'route', ROUTE,
        { status, path: pathOf(req), ip: req.socket.remoteAddress, reason: e.message }).catch((auditErr) => this.s.log.warn({ err: auditErr }, 'auditing a refused request failed'));
    }
  }
}

/** One client's stream: lines after its offset, status changes, the end. */
class LogStream implements LogWatcher {
  readonly runId: string;
  private sent: number;
  private status?: ExecutionStatus;
  private latest: LogState | null | undefined;
  private busy = false;
  private ended = false;
  private lastPong = Date.now();
  private lastCheck = Date.now();
  private readonly gone: Promise<void>;
  private markGone!: () => void;

  constructor(
    private readonly ws: WebSocket,
    private readonly run: Run,
    private readonly secret: string,
    offset: number,
    private readonly s: Services,
    private readonly options: LogStreamOptions,
  ) {
    this.runId = run.id;
    this.sent = offset;
    this.gone = new Promise((resolve) => (this.markGone = resolve));
    ws.on('pong', () => (this.lastPong = Date.now()));
    // Clients have nothing to say on this stream.
    ws.on('message', () => undefined);
  }

  changed(state: LogState | null): void {
    if (this.ended) return;
    this.latest = state;
    if (!this.busy) void this.pump();
  }

  async stopping(): Promise<void> {
    this.close(1001, 'server stopping; reconnect with offset');
    const answered = await Promise.race([this.gone.then(() => true), delay(this.options.closeWaitMs ?? 2_000).then(() => false)]);
    if (!answered) this.ws.terminate();
  }

  closed(): void {
    this.ended = true;
    this.markGone();
  }

  ping(pongTimeoutMs: number): void {
    if (this.ended) return;
    if (Date.now() - this.lastPong > pongTimeoutMs) this.ws.terminate();
    else this.ws.ping();
  }

  /** Delivers the latest state, one at a time; a state that arrives meanwhile is delivered next. */
  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.latest !== undefined && !this.ended) {
        const state = this.latest;
        this.latest = undefined;
        if (!(await this.stillAllowed())) return this.close(1008, 'token expired or revoked, or access lost');
        if (state === null) return this.close(1008, 'the execution no longer exists');
        await this.deliver(state);
      }
    } catch (err) {
      this.s.log.error({ err, runId: this.runId }, 'log stream failed');
      this.close(1011, 'internal error; reconnect with offset');
    } finally {
      this.busy = false;
    }
  }

  /** Lines up to the state's end (and any committed since), then its status if it changed, then the end. */
  private async deliver(state: LogState): Promise<void> {
    while (this.sent < state.logSeq && !this.ended) {
      const lines = await this.s.logs.list(this.runId, this.sent, PAGE);
      // Lines removed by retention: nothing more to send.
      if (!lines.length) break;
      await this.send(lines.map((l) => ({ type: 'log', ...presentLogLine(l) })));
      this.sent = lines.at(-1)!.seq;
    }
    const status = executionStatus(state.status);
    if (status !== this.status && !this.ended) {
      this.status = status;
      await this.send([{ type: 'status', status }]);
    }
    if (isTerminalRun(state.status) && !this.ended) {
      await this.send([{ type: 'end', status, seq: this.sent }]);
      this.close(1000, 'end');
    }
  }

  /** Sends frames; a client that leaves over 1 MiB unsent and does not take it within `drainWaitMs` is dropped (1013). */
  private async send(frames: object[]): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) {
      this.ended = true;
      return;
    }
    let written: Promise<void> = Promise.resolve();
    for (const f of frames) written = new Promise((resolve) => this.ws.send(JSON.stringify(f), () => resolve()));
    if (this.ws.bufferedAmount <= MAX_UNSENT) return;
    const drained = await Promise.race([written.then(() => true), delay(this.options.drainWaitMs ?? 5_000).then(() => false)]);
    if (!drained) this.close(1013, 'client too slow: over 1 MiB unsent; reconnect with offset');
  }

  /** Every `recheckMs`: the token still holds (not expired or revoked) and still sees the execution. */
  private async stillAllowed(): Promise<boolean> {
    if (Date.now() - this.lastCheck < (this.options.recheckMs ?? 5_000)) return true;
    this.lastCheck = Date.now();
    let p: Principal | undefined;
    try {
      p = await this.s.tokens.authenticate(this.secret);
    } catch (err) {
      if (err instanceof AppError && err.code === 'authentication_required') return false;
      // The database is away: check again next time rather than drop the stream.
      return true;
    }
    return !!p && READ_ROLES.includes(p.role) && !p.runId && canAccessProject(p, this.run.repositoryIdentifier);
  }

  private close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }
}
