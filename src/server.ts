import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { systemDatabaseUrlFor, type Config } from './config.js';
import { createServices, type Services } from './container.js';
import { EmbeddedPostgres } from './db/embedded-postgres.js';
import { createOrm, ensureDatabase, migrate } from './db/orm.js';
import { loadManifests } from './core/registry/load-manifests.js';
import { createApp } from './http/app.js';
import { createDoors } from './doors/index.js';
import { retakeStalledDeliveries, setInboundDeps } from './doors/inbound.js';
import { approvalSweep } from './core/approvals/approval-sweep.js';
import { deliveryWorkflowId } from './engine/approval-effects.js';
import { lockCleanup } from './core/locks/lock-cleanup.js';
import { Sweeper } from './core/maintenance/sweeper.js';
import { maintenanceTasks } from './core/maintenance/tasks.js';
import { forgetRunWorkflows } from './engine/forget-workflows.js';
import { orphanSweep } from './core/runs/orphan-sweep.js';
import { LogFollower } from './core/logs/log-follower.js';
import { routeUpgrades } from './http/upgrade.js';
import { LogStreams } from './http/workflow-platform/log-stream.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export interface RunningServer {
  services: Services;
  server: Server;
  url: string;
  /** Graceful stop: stop accepting, drain requests, stop the engine, close the database. */
  stop(): Promise<void>;
}

/** Starts Flowgate: database (embedded unless DATABASE_URL), migrations, engine, HTTP. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const definitions = loadManifests(config.manifestsDir);
  let embedded: EmbeddedPostgres | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = new EmbeddedPostgres(config.dataDir, config.embeddedPgPort, (m) => log.info(m));
    databaseUrl = await embedded.start();
  }
  await ensureDatabase(databaseUrl);
  const orm = await createOrm(databaseUrl);
  await migrate(orm, databaseUrl);
  const systemDatabaseUrl = config.systemDatabaseUrl ?? systemDatabaseUrlFor(databaseUrl);
  const services = createServices({ config, version: VERSION, log, orm, definitions, systemDatabaseUrl, databaseUrl });

  services.cacheInvalidation.start();
  services.tokens.start();
  // Flow documents are flow types like the manifests: in the registry before anything starts a run.
  await services.flowDocuments.start();
  // An env variable added later wins over a stored credential of its name: said once, at start.
  const shadowed = await services.credentials.shadowedByEnv();
  if (shadowed.length) log.warn({ credentials: shadowed }, 'stored credentials hidden by FLOWGATE_CREDENTIAL_<NAME> variables of the same name (the variables win)');
  setInboundDeps(orm, log);
  const { doors, off } = createDoors(services);
  for (const door of doors) if (door.destination) services.notifier.register(door.destination);
  for (const door of off) log.info(`Door off: ${door}`);

  const generated = await services.tokens.ensureAdmin(config.adminToken);
  if (generated) {
    // Printed once, to the console only: only its hash is stored.
    process.stdout.write(`\nFlowgate admin token (shown once, store it now): ${generated}\n\n`);
  }
  await services.engine.launch(services.engineDeps);
  // FLOWGATE_EXECUTOR=off: runs committed here are told to the replicas that execute.
  if (config.executes) await services.executor?.start();
  services.outbox.start();
  await services.schedules.syncManifests(definitions);
  const sweeper = new Sweeper([approvalSweep(services.approvals, services.approvalEffects, (id) => services.engine.knows(deliveryWorkflowId(id))), lockCleanup(services.locks), orphanSweep(orm, services.launcher, services.engine, log, (id) => services.cicd.dispatchOrphan(id)),
    ...maintenanceTasks(services, retakeStalledDeliveries, forgetRunWorkflows)], log, config.sweepIntervalMs);
  sweeper.start();

  const app = createApp(services, doors);
  const server = await new Promise<Server>((resolve, reject) => {
    const srv = app.listen(config.port, config.host, () => resolve(srv));
    srv.once('error', reject);
  });
  // The executions' log WebSocket, on the same server; its streams follow logs from PostgreSQL.
  const logStreams = new LogStreams(services, new LogFollower(orm, databaseUrl, log));
  routeUpgrades(server, [logStreams], app.callback());
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ port, flowTypes: definitions.map((d) => d.id), doors: doors.map((d) => d.name), database: embedded ? 'embedded' : 'external', executorId: config.executorId }, 'Flowgate listening');

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    services.lifecycle.draining = true;
    // First: a server does not finish closing while upgraded connections stay open (they hear 1001 and resume elsewhere).
    await logStreams.close();
    services.consoleStreams.closeAll();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.closeAllConnections(); resolve(); }, config.shutdownTimeoutMs);
      server.close(() => { clearTimeout(timer); resolve(); });
      server.closeIdleConnections();
    });
    await sweeper.stop();
    for (const door of doors) await door.stop?.();
    await services.executor?.stop();
    await services.outbox.stop();
    await services.engine.shutdown();
    await services.tokens.stop();
    services.flowDocuments.stop();
    await services.cacheInvalidation.stop();
    await orm.close(true);
    if (embedded) await embedded.stop();
  })());
  return { services, server, url: `http://127.0.0.1:${port}`, stop };
}
