import type { AzureDevOpsSettings } from '../../config.js';
import type { Services } from '../../container.js';
import type { AdoClient } from './client.js';
import type { StepRetry } from '../inbound.js';

export const DOOR = 'azure-devops';

interface Deps { s: Services; client: AdoClient; settings: AzureDevOpsSettings; org: string }
let deps: Deps | undefined;
/** Hands the services to the durable processing; called when the door is created (before the engine launches). */
export function setAzureDevOpsDeps(d: Deps): void { deps = d; }
export const d = (): Deps => {
  if (!deps) throw new Error('the Azure DevOps door is not configured');
  return deps;
};

/** Reads through the API retry on their own: a blip must not lose an event. */
export const READ: StepRetry = { attempts: 4, intervalMs: 1000, backoff: 2 };
