import { DBOS } from '@dbos-inc/dbos-sdk';
import pg from 'pg';
import type { EnginePort } from '../core/runs/engine-port.js';
import { engineUnavailable } from '../errors.js';
import { withTimeout } from '../util/with-timeout.js';
import { outsideWorkflow } from './outside-workflow.js';
import type { EngineDeps } from './engine-deps.js';
import { setScheduleDeps } from './scheduled-workflow.js';
import { isLive } from './live-workflows.js';
import { RUN_WORKFLOW, runWorkflow, setEngineDeps, STEP_WORKFLOW } from './workflows.js';
import { withSessionSetting } from '../db/session-settings.js';

const ENGINE_CALL_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 2_000;
const STALL_AFTER_MS = 5_000;

export interface EngineOptions {
  systemDatabaseUrl: string;
  executorId: string;
  applicationVersion: string;
  logLevel: string;
  /** How soon a new, paused or changed schedule is noticed. */
  schedulerPollMs: number;
}

/**
 * The durable engine on DBOS Transact. Workflows are registered at import; launching recovers
 * the unfinished workflows of this executor id, so a restarted replica picks up where it died.
 */
export class DbosEngine implements EnginePort {
  private launched = false;
  /** One connection to the engine's system database, for aggregate reads the engine has no API for (metrics). */
  private stats?: pg.Pool;

  constructor(private readonly options: EngineOptions) {}

  async launch(deps: EngineDeps): Promise<void> {
    setEngineDeps(deps);
    setScheduleDeps(deps);
    DBOS.setConfig({
      name: 'flowgate',
      systemDatabaseUrl: withIdleTransactionTimeout(this.options.systemDatabaseUrl),
      executorID: this.options.executorId,
      // A fixed version: recovery must pick up runs started by an earlier process of the same release.
      applicationVersion: this.options.applicationVersion,
      logLevel: this.options.logLevel === 'debug' || this.options.logLevel === 'trace' ? 'debug' : 'warn',
      systemDatabasePoolSize: 20,
      schedulerPollingIntervalMs: this.options.schedulerPollMs,
    });
    await DBOS.launch();
    this.stats = new pg.Pool({ connectionString: this.options.systemDatabaseUrl, max: 1, idleTimeoutMillis: 30_000, connectionTimeoutMillis: READY_TIMEOUT_MS, statement_timeout: READY_TIMEOUT_MS });
    // An idle connection lost to a database restart must not crash the process; the next query reconnects.
    this.stats.on('error', () => {});
    this.launched = true;
  }

  async shutdown(): Promise<void> {
    if (!this.launched) return;
    this.launched = false;
    await this.stats?.end().catch(() => {});
    this.stats = undefined;
    await DBOS.shutdown();
  }

  async startRun(run: { id: string; engineRunId: string }): Promise<void> {
    if (!this.launched) throw engineUnavailable('Flow engine is not running');
    try {
      // The engine retries a lost database for ever; a request must not wait with it.
      // Top-level whoever asks (a door's delivery workflow included): the run is nobody's child step.
      await withTimeout(outsideWorkflow(() => DBOS.startWorkflow(runWorkflow, { workflowID: run.engineRunId })(run.id)), ENGINE_CALL_TIMEOUT_MS, 'starting the run');
    } catch (err) {
      throw engineUnavailable(`Flow engine unavailable: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  async cancelRun(engineRunId: string): Promise<void> {
    if (!this.launched) throw engineUnavailable('Flow engine is not running');
    await DBOS.cancelWorkflow(engineRunId, { cancelChildren: true });
  }

  async send(workflowId: string, topic: string, message: unknown, idempotencyKey?: string): Promise<void> {
    if (!this.launched) throw engineUnavailable('Flow engine is not running');
    try {
      await withTimeout(DBOS.send(workflowId, message, topic, idempotencyKey), ENGINE_CALL_TIMEOUT_MS, 'delivering a message');
    } catch (err) {
      throw engineUnavailable(`Flow engine unavailable: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  /**
   * Re-runs this executor's run and step workflows that are PENDING in the database but no longer
   * executing here (see live-workflows); they replay from their last checkpoint. Returns their ids.
   */
  async reviveStalled(): Promise<string[]> {
    if (!this.launched) return [];
    const pending = await DBOS.listWorkflows({ status: 'PENDING', executorId: this.options.executorId, workflowName: [RUN_WORKFLOW, STEP_WORKFLOW], loadInput: false, loadOutput: false, limit: 10_000 });
    // Untouched for a while, too: one just dispatched may not have entered its body yet.
    const quietSince = Date.now() - STALL_AFTER_MS;
    const stalled = pending.filter((w) => (w.updatedAt ?? 0) < quietSince && !isLive(w.workflowID)).map((w) => w.workflowID);
    for (const id of stalled) await DBOS.resumeWorkflow(id);
    return stalled;
  }

  async knows(engineRunId: string): Promise<boolean> {
    return (await DBOS.getWorkflowStatus(engineRunId)) !== null;
  }

  isRunning(): boolean {
    return this.launched;
  }

  async isReady(): Promise<boolean> {
    if (!this.launched) return false;
    try {
      await withTimeout(DBOS.getWorkflowStatus('flowgate-readiness-probe'), READY_TIMEOUT_MS, 'the readiness probe');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Workflows waiting to run or running on this database (all executors). Read on every /metrics
   * scrape: one count over the engine's partial index of in-flight workflows, not a listing of them.
   */
  async queueDepth(): Promise<number> {
    if (!this.launched || !this.stats) return 0;
    const { rows } = await this.stats.query<{ n: string }>(`select count(*)::text as n from dbos.workflow_status where status in ('PENDING', 'ENQUEUED')`);
    return Number(rows[0]?.n ?? 0);
  }
}

/**
 * DBOS ends a transaction left idle for a minute. Unless its URL sets that already, it does so by
 * a query on every new connection that races the borrower's first (pg warns of a query while one
 * runs, and pg 9 will refuse it). Set in the URL, the server applies it when the connection starts.
 */
export const withIdleTransactionTimeout = (databaseUrl: string, ms = 60_000): string =>
  withSessionSetting(databaseUrl, 'idle_in_transaction_session_timeout', String(ms));
