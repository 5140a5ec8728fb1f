import { DBOS } from '@dbos-inc/dbos-sdk';

const ACTIVE = new Set(['PENDING', 'ENQUEUED', 'DELAYED']);

/**
 * Removes the engine's records of pruned runs: their run (or cicd dispatch) workflows and every
 * workflow those started (steps that ran side by side). A workflow still active is left alone.
 */
export async function forgetRunWorkflows(engineRunIds: string[]): Promise<void> {
  if (!engineRunIds.length) return;
  const known = await DBOS.listWorkflows({ workflowIDs: engineRunIds, loadInput: false, loadOutput: false });
  const ended = known.filter((w) => !ACTIVE.has(w.status)).map((w) => w.workflowID);
  if (ended.length) await DBOS.deleteWorkflows(ended, true);
}
