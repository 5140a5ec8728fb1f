import { DBOS } from '@dbos-inc/dbos-sdk';
import { isDatabaseUnavailable } from '../errors.js';

type StepOptions = NonNullable<Parameters<typeof DBOS.runStep>[1]>;

const MAX_WAIT_MS = 10 * 60_000;

/**
 * `DBOS.runStep` for steps that read or write Flowgate's database. The engine survives a lost
 * database by retrying its own writes; our steps must too, or an outage would turn into failed
 * (or forever stuck) runs. Only "database unavailable" errors are retried here, with backoff
 * for up to ten minutes; every other error is the step's own outcome.
 */
export function durableStep<T>(fn: () => Promise<T>, options: StepOptions): Promise<T> {
  return DBOS.runStep(() => whileDatabaseDown(fn), options);
}

export async function whileDatabaseDown<T>(fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let wait = 250; ; wait = Math.min(wait * 2, 10_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() - started > MAX_WAIT_MS) throw err;
      DBOS.logger.warn(`database unavailable, retrying in ${wait} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
