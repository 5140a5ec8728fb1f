/** What the core needs from the durable engine; the DBOS implementation lives in src/engine. */
export interface EnginePort {
  /** Durably starts a run's workflow; throws an `engine_unavailable` AppError when it cannot. */
  startRun(run: { id: string; engineRunId: string }): Promise<void>;
  /** Cancels a run's workflow and every workflow it started (steps, child runs). */
  cancelRun(engineRunId: string): Promise<void>;
  /** Delivers a message to a step that waits for it. */
  send(stepWorkflowId: string, topic: string, message: unknown, idempotencyKey?: string): Promise<void>;
  isReady(): Promise<boolean>;
  /** Whether this process's engine is running (cheap: no database call). */
  isRunning(): boolean;
  /** Re-runs this process's run and step workflows that stopped without ending (a checkpoint lost to an outage). */
  reviveStalled(): Promise<string[]>;
  /** Whether the engine knows the run's workflow at all. */
  knows(engineRunId: string): Promise<boolean>;
}

/** The workflow id of one step of a run: deterministic so that recovery and messages find it. */
export const stepWorkflowId = (engineRunId: string, stepRef: string) => `${engineRunId}::${stepRef}`;
