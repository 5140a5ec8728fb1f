import type { DoorClients } from '../doors/clients.js';
import { StepFailure } from '../engine/step-failure.js';
import type { KindCall } from '../executor/kinds.js';

/** The door names of `requires: ['door:<name>']` (as the catalogue reads them) → their client. */
const CLIENT = { slack: 'slack', github: 'github', 'azure-devops': 'azureDevOps' } as const;
export type DoorName = keyof typeof CLIENT;

/** The door's client; a door not configured here fails the step for good, saying so. */
export function doorClient<D extends DoorName>(c: KindCall, door: D): NonNullable<DoorClients[(typeof CLIENT)[D]]> {
  const client = c.extra.doors[CLIENT[door]];
  if (!client) throw new StepFailure(`the ${door} door is not configured on this server`, false);
  return client as NonNullable<DoorClients[(typeof CLIENT)[D]]>;
}

/** A refusal that asking again will not change: a 4xx other than 408 (timeout) and 429 (rate limit). */
export const isFinalStatus = (status: number | undefined): boolean => status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;

/** A failed API call as a step failure: final for a refusal, retryable (per the step's `retry`) otherwise. */
export const apiFailure = (err: unknown, status: number | undefined): StepFailure =>
  err instanceof StepFailure ? err : new StepFailure((err as Error)?.message ?? String(err), !isFinalStatus(status));
