import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { ApprovalService, type ApprovalEffects } from './core/approvals/approval-service.js';
import { AuditLog, SYSTEM } from './core/audit/audit-log.js';
import { CicdService } from './core/cicd/cicd-service.js';
import { CicdStore } from './core/cicd/cicd-store.js';
import { CicdDispatchers } from './core/cicd/dispatcher.js';
import { WebhookDispatcher } from './core/cicd/webhook-dispatcher.js';
import { GithubActionsDispatcher } from './core/cicd/github-actions-dispatcher.js';
import { AzurePipelinesDispatcher } from './core/cicd/azure-pipelines-dispatcher.js';
import { PipelineRuns } from './core/cicd/pipeline-runs.js';
import { GithubClient } from './doors/github/client.js';
import { doorClients } from './doors/clients.js';
import { IdentityDirectory } from './core/identity/directory.js';
import { TokenService } from './core/identity/tokens.js';
import { AccountService } from './core/identity/accounts.js';
import { JwtCodec } from './core/identity/jwt.js';
import { LoginService } from './core/identity/login.js';
import { SessionService } from './core/identity/sessions.js';
import { ConsoleSessions } from './core/identity/console-sessions.js';
import { LoginLinks } from './core/identity/login-links.js';
import { EventStreams } from './console/sse.js';
import { PersonScope } from './core/identity/person-scope.js';
import { RunLogs } from './core/logs/run-logs.js';
import { Notifier } from './core/notify/notifier.js';
import { guardedFetch } from './core/net/guarded-fetch.js';
import { OutboundPolicy } from './core/net/outbound-policy.js';
import { ProjectService } from './core/projects/projects.js';
import { CacheInvalidation } from './core/cache/invalidation.js';
import type { FlowDefinition } from './core/registry/manifest-schema.js';
import { FlowRegistry } from './core/registry/registry.js';
import { RunLauncher } from './core/runs/run-launcher.js';
import { RunService } from './core/runs/run-service.js';
import { RunControl } from './core/runs/run-control.js';
import { RunStore } from './core/runs/run-store.js';
import { ExternalRuns } from './core/runs/external-runs.js';
import { FlowRunRecords } from './core/runs/flow-run-records.js';
import { FlowDocuments } from './core/flows/flow-documents.js';
import { KvStore } from './core/kv/kv-store.js';
import { RunLocks } from './core/locks/run-locks.js';
import { FlowLocks } from './core/locks/flow-locks.js';
import { ScheduleService } from './core/schedules/schedule-service.js';
import { TriggerService } from './core/triggers/trigger-service.js';
import { WebhookReceiver } from './core/triggers/webhook-receiver.js';
import { dbosSchedules } from './engine/scheduled-workflow.js';
import { approvalEffects } from './engine/approval-effects.js';
import { setDeliveryDeps } from './engine/approval-delivery.js';
import { setApprovalUpdateDeps } from './engine/approval-update.js';
import { cicdEngine, setCicdDeps } from './engine/cicd-dispatch.js';
import { DbosEngine } from './engine/dbos-engine.js';
import type { EngineDeps } from './engine/engine-deps.js';
import { Metrics } from './observability/metrics.js';
import { Executor } from './executor/executor.js';
import { ControlStore } from './executor/control-store.js';
import { signalRunVia } from './executor/signal.js';
import { NoticeOutbox } from './core/notify/outbox.js';
import { credentialServices } from './core/credentials/credentials.js';
import type { CredentialService } from './core/credentials/credential-service.js';
import { noticeDelivery, noticeReads } from './core/notify/notice-delivery.js';

export interface Services {
  config: Config;
  version: string;
  log: Logger;
  orm: MikroORM;
  audit: AuditLog;
  tokens: TokenService;
  projects: ProjectService;
  registry: FlowRegistry;
  store: RunStore;
  runs: RunService;
  /** Pause, resume, skip, force-complete, step retry, subtree replay and run retry (v2 runs). */
  control: RunControl;
  logs: RunLogs;
  notifier: Notifier;
  engine: DbosEngine;
  metrics: Metrics;
  engineDeps: EngineDeps;
  approvals: ApprovalService;
  approvalEffects: ApprovalEffects;
  identities: IdentityDirectory;
  cicd: CicdService;
  schedules: ScheduleService;
  externalRuns: ExternalRuns;
  /** What the flow-runs API keeps of runs (ids, labels), its external records and deletions. */
  flowRuns: FlowRunRecords;
  /** Flow documents (the workflow platform API's flows), kept in the registry on every replica. */
  flowDocuments: FlowDocuments;
  /** Cron and webhook triggers of flows (cron triggers are schedules `trigger-<id>`). */
  triggers: TriggerService;
  /** The public webhook endpoint's rules (lookup by key digest, rate limit, signature, idempotency). */
  webhooks: WebhookReceiver;
  /** The key-value store (per namespace). */
  kv: KvStore;
  /** Stored credentials (write-only values; off without FLOWGATE_ENCRYPTION_KEY). */
  credentials: CredentialService;
  locks: RunLocks;
  launcher: RunLauncher;
  /** The v2 executor, when FLOWGATE_ENGINE=v2 carries flow runs. */
  executor?: Executor;
  /** Delivers the notices of v2 runs' threads (on every process, whatever the engine). */
  outbox: NoticeOutbox;
  /** Accounts and their logins (the /auth routes): only with FLOWGATE_JWT_SECRET. */
  accounts?: AccountService;
  logins?: LoginService;
  /** The web console's sign-in: its sessions, and the one-time links chat bots send. */
  consoleSessions: ConsoleSessions;
  loginLinks: LoginLinks;
  /** The console's open event streams (a stopping server ends them first). */
  consoleStreams: EventStreams;
  /** Keeps the token and project caches right across replicas (LISTEN flowgate_cache). */
  cacheInvalidation: CacheInvalidation;
  /** Set when a graceful stop begins: /readyz answers 503 from then on, so balancers stop sending. */
  lifecycle: { draining: boolean };
}

/** The one place where Flowgate's services are constructed and wired. */
export function createServices(input: {
  config: Config; version: string; log: Logger; orm: MikroORM; definitions: FlowDefinition[]; systemDatabaseUrl: string; databaseUrl?: string;
}): Services {
  const { config, orm, log } = input;
  const engine = new DbosEngine({ systemDatabaseUrl: input.systemDatabaseUrl, executorId: config.executorId, applicationVersion: input.version, logLevel: config.logLevel, schedulerPollMs: config.schedulerPollMs });
  const launcher = new RunLauncher(engine, {
    limit: config.activeRuns, holdMs: 2_000,
    onError: (run, err) => log.warn({ runId: run.id, err: (err as Error).message }, 'run not handed to the engine yet; the orphan sweep retries'),
  });
  const metrics = new Metrics(() => engine.queueDepth(), () => launcher.backlog);
  const audit = new AuditLog(orm);
  const registry = new FlowRegistry(input.definitions);
  const kv = new KvStore(orm);
  const credentials = credentialServices(orm, config, audit, (source) => metrics.credentialResolutions.inc({ source }));
  const stepCredentials = (repo: string, input: unknown) => credentials.resolver.forStep(repo, input);
  // Token and project reads are cached only while this listener is connected (see core/cache).
  const cacheInvalidation = new CacheInvalidation(input.databaseUrl, log);
  const cached = { invalidation: cacheInvalidation, ttlMs: config.cacheTtlMs };
  const projects = new ProjectService(orm, registry, audit, cached);
  const store = new RunStore(orm);
  const logs = new RunLogs(orm);
  // Addresses chosen by flows, payloads and callers go through the guard (refusals audited); the doors' configured APIs do not.
  const outboundFetch = guardedFetch(new OutboundPolicy(config.outboundAllow), {
    onRefused: (r) => audit.record(SYSTEM, 'outbound.refused', 'host', r.host, { address: r.address, reason: r.reason, redirect: r.redirect }),
  });
  const notifier = new Notifier(config.webhookSecret, outboundFetch);
  const approvals = new ApprovalService(orm, projects, audit);
  // A decision on a v2 run's approval wakes the run (also from a process without an executor); DBOS runs get their message as before.
  const effects = approvalEffects(engine, store, (runId) => (executor ? executor.signal(runId) : signalRunVia(orm, runId)), {
    // What a decision wakes or queues, this process acts on at once; its own NOTIFY is for the others.
    notifyMark: () => executor?.mark ?? '',
    told: ({ woke, noticed }) => {
      if (woke) executor?.wake();
      if (noticed) outbox.kick();
    },
  });
  // What a v2 run's thread hears goes through the outbox: written with the change, delivered with retries, in order.
  const outbox = new NoticeOutbox(orm, noticeDelivery({ store, approvals, notifier }),
    (n, error) => logs.append(n.runId, [{ level: 'warn', source: 'engine', group: 'notify', message: `${n.kind === 'run.finished' ? 'Result' : n.kind} not delivered: ${error}` }]).then(() => undefined), log,
    { reads: noticeReads });
  approvals.setEffects(effects);
  setDeliveryDeps({ approvals, projects, notifier, webhookSecret: config.webhookSecret });
  setApprovalUpdateDeps({ approvals, notifier, store });
  const tokens = new TokenService(orm, audit, cached);
  // Accounts' JWTs are bearers on every route beside Flowgate tokens (TokenService tells them apart).
  const accounts = config.jwt ? new AccountService(orm, audit, new SessionService(orm, new JwtCodec(config.jwt))) : undefined;
  if (accounts) tokens.acceptSessions(accounts.sessions);
  const logins = accounts && new LoginService(orm, accounts, audit, (result) => metrics.logins.inc({ result }));
  // CI/CD providers: `webhook`; `github-actions` when the GitHub door is configured; a provider without one answers "not configured".
  const dispatchers = new CicdDispatchers([
    new WebhookDispatcher({ secret: config.webhookSecret, defaultUrl: config.cicdWebhookUrl, flowgateUrl: config.publicUrl }, outboundFetch),
    ...(config.github ? [new GithubActionsDispatcher(GithubClient.for(config.github, log), { flowgateUrl: config.publicUrl, repositoryOf: async (id) => (await store.findById(id))?.repositoryIdentifier })] : []),
    ...(config.azureDevOps ? [new AzurePipelinesDispatcher({ orgUrl: config.azureDevOps.orgUrl, token: config.azureDevOps.token, flowgateUrl: config.publicUrl, repositoryOf: async (id) => (await store.findById(id))?.repositoryIdentifier })] : []),
  ]);
  const cicd = new CicdService(
    { dispatchers, store, cicdStore: new CicdStore(orm), tokens, logs, audit, notifier, engine: cicdEngine },
    { credentials: config.credentials, credentialsFor: (repo, target) => credentials.resolver.forStep(repo, target),
      publicUrl: config.publicUrl, tokenTtlHours: config.executionTokenTtlHours, runFinished: (status) => metrics.runsFinished.inc({ status }) },
  );
  setCicdDeps({ cicd });
  const executor = config.engine === 'v2' && input.databaseUrl ? new Executor(
    { databaseUrl: input.databaseUrl, owner: config.executorId, maxRuns: Math.max(config.activeRuns, 256), leaseMs: config.leaseMs, pollMs: 1_000, maxFlush: 200 },
    {
      notifier, outboundFetch, credentials: config.credentials, stepCredentials, log, findProject: (repo) => projects.findShared(repo),
      noticed: () => outbox.kick(),
      runEnded: (run, status, answer) => {
        metrics.runsFinished.inc({ status });
        // (Its thread hears of the end through the outbox row its flush wrote.)
        // An approval still pending when its run ends some other way can no longer matter.
        if (answer.openApprovals) {
          approvals.closeForRuns([run.id], 'stale', SYSTEM).catch((err) => log.warn({ runId: run.id, err: (err as Error).message }, 'approvals of an ended run not closed'));
        }
        // Pipelines its end left running (`cicd.run` steps, its own or its child flows') are asked to stop.
        if (run.children.length || run.definition.steps.some((s) => s.type === 'cicd.run')) {
          cicd.stopAbandoned(run.id).catch((err) => log.warn({ runId: run.id, err: (err as Error).message }, 'pipelines of an ended run not asked to stop'));
        }
      },
    },
  ) : undefined;
  executor?.setExtras({
    approvals, kv, flowLocks: new FlowLocks(orm), doors: doorClients(config, log), incidentApis: config.incidentApis,
    pipelines: new PipelineRuns({ store, cicd }),
    // `runs` is built just below; children are prepared only once the executor runs.
    prepareRun: (input) => runs.prepare(input),
  });
  const runs = new RunService(store, registry, projects, engine, launcher, audit, approvals, { runStarted: (t) => metrics.runsStarted.inc({ task_type: t }) }, cicd, cicdEngine, executor);
  const triggers = new TriggerService(orm, dbosSchedules, registry, audit, log);
  const engineDeps: EngineDeps = {
    store, runs, logs, projects, notifier, approvals, audit, triggers, credentials: config.credentials, stepCredentials, outboundFetch,
    runFinished: (runId, status) => { metrics.runsFinished.inc({ status }); launcher.release(runId); },
    runParked: (runId) => launcher.release(runId),
  };
  // Run control works on v2 runs through the executor's tables (refusing others with a clear answer).
  const control = new RunControl(runs, store, new ControlStore(orm), approvals);
  return {
    config, version: input.version, log, orm, audit, tokens, projects, registry, store, runs, control, logs, notifier,
    engine, metrics, engineDeps, approvals, approvalEffects: effects, identities: new IdentityDirectory(orm, audit, cached),
    schedules: new ScheduleService(dbosSchedules, registry, projects, store, audit),
    externalRuns: new ExternalRuns(store, registry, projects, audit),
    flowRuns: new FlowRunRecords(orm),
    flowDocuments: new FlowDocuments(orm, registry, projects, audit, log, cacheInvalidation, triggers),
    triggers,
    webhooks: new WebhookReceiver(triggers.store, runs, projects, audit),
    kv,
    credentials: credentials.service,
    locks: new RunLocks(orm, audit),
    lifecycle: { draining: false },
    consoleSessions: new ConsoleSessions(orm, new PersonScope(orm), audit),
    loginLinks: new LoginLinks(orm, audit),
    consoleStreams: new EventStreams(),
    cicd, launcher, executor, outbox, cacheInvalidation, accounts, logins,
  };
}
