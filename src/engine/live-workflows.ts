import { DBOS } from '@dbos-inc/dbos-sdk';

/**
 * The run and step workflows executing in this process. A workflow whose checkpoint could not
 * be written (the database went away at that moment) ends in memory but stays PENDING in the
 * database, and the engine would only pick it up at the next start; comparing the two finds it.
 */
const live = new Set<string>();

export async function tracked<T>(body: () => Promise<T>): Promise<T> {
  const id = DBOS.workflowID!;
  live.add(id);
  try {
    return await body();
  } finally {
    live.delete(id);
  }
}

export const isLive = (workflowId: string) => live.has(workflowId);
