/** A schedule as the engine stores it: the flow to run is in its context. */
export interface StoredSchedule {
  name: string;
  expression: string;
  timezone: string | null;
  enabled: boolean;
  lastFiredAt: string | null;
  context: ScheduleContext;
}

export interface ScheduleContext {
  name: string;
  flowType: string;
  /** null: every project that has the flow type enabled. */
  repositoryIdentifier: string | null;
  payload: Record<string, unknown>;
  /** `trigger`: a cron trigger's schedule, changed only through its trigger (its firing reads the trigger's row). */
  source: 'manifest' | 'api' | 'trigger';
  /** For trigger schedules: the trigger. */
  triggerId?: string;
  /**
   * Who created or last changed the schedule through the API: its runs' requester, so the
   * self-approval rule applies to them. Absent for a schedule only its manifest ever set.
   */
  requestedBy?: string;
  /** For manifest schedules: the expression the manifest had when last applied. */
  manifestCron?: string;
  manifestTimezone?: string | null;
}

/** The engine's durable schedules (one firing = one workflow, whatever the number of replicas). */
export interface SchedulePort {
  list(): Promise<StoredSchedule[]>;
  get(name: string): Promise<StoredSchedule | null>;
  create(name: string, expression: string, timezone: string | null, context: ScheduleContext, enabled: boolean): Promise<void>;
  update(name: string, changes: { expression?: string; timezone?: string | null; context?: ScheduleContext }): Promise<void>;
  pause(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  delete(name: string): Promise<void>;
}
