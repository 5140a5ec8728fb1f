import { onCommented } from './comments.js';
import type { HookEvent } from './hooks.js';
import { onPipelineRun } from './pipelines.js';
import { onWorkItemChange } from './work-item-events.js';

export { DOOR, setAzureDevOpsDeps } from './context.js';

/**
 * Processes one accepted service hook event (see `inbound.ts`: I/O that must not repeat is a `step`). The door's
 * parts: `read.ts` (API and database reads), `act.ts` (core calls and replies), `decide.ts`,
 * `work-item-events.ts`, `comments.ts`, `pipelines.ts`.
 */
export async function processHook(payload: unknown, deliveryId: string): Promise<void> {
  const event = payload as HookEvent;
  if (event.kind === 'pipeline-run') return onPipelineRun(event, deliveryId);
  if (event.eventType === 'workitem.commented') return onCommented(event);
  return onWorkItemChange(event);
}
