import type { Services } from '../container.js';
import type { Door } from './door.js';
import { GITHUB_OFF, githubDoor } from './github/index.js';
import { createSlackDoor, SLACK_OFF } from './slack/index.js';
import { AZURE_DEVOPS_OFF, createAzureDevOpsDoor } from './azure-devops/index.js';
import { setInboundOwner } from './inbound.js';

/** The doors whose settings are present (each is off, and says so at start, without them). */
export function createDoors(s: Services): { doors: Door[]; off: string[] } {
  const doors: Door[] = [];
  const off: string[] = [];
  // Deliveries are taken in this replica's name: its next start takes up what a crash left.
  setInboundOwner(s.config.executorId);
  if (s.config.github) doors.push(githubDoor(s));
  else off.push(GITHUB_OFF);
  if (s.config.slack) doors.push(createSlackDoor(s, s.config.slack));
  else off.push(SLACK_OFF);
  if (s.config.azureDevOps) doors.push(createAzureDevOpsDoor(s, s.config.azureDevOps));
  else off.push(AZURE_DEVOPS_OFF);
  return { doors, off };
}
