/** A step failed for a reason worth showing to the user (not a bug). */
export class StepFailure extends Error {
  constructor(message: string, readonly retryable = true) {
    super(message);
    this.name = 'StepFailure';
  }
}

/** DBOS throws this from the next DBOS call of a cancelled workflow: it must propagate. */
export const isCancellation = (err: unknown) =>
  (err as Error)?.name === 'DBOSWorkflowCancelledError' || /has been cancelled/.test(String((err as Error)?.message));

export const messageOf = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0];
