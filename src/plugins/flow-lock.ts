import { z } from 'zod';
import { StepFailure } from '../engine/step-failure.js';
import { Park } from '../executor/kinds.js';
import { inputOf, plugin } from './plugin.js';

const key = z.string().min(1, 'must not be empty').max(200, 'at most 200 characters');
const input = z.strictObject({ key, waitTimeoutSeconds: z.number().min(0).max(7 * 86_400).default(3_600) });

/** What a waiting step keeps on its row between polls. */
interface Waiting { key: string; since: string; until: string; polls: number; holder: string | null }

/**
 * A holder's end wakes its waiters at once; polling too bounds what a missed wake-up costs (a
 * holder cancelled, or ended in the batch that parked the waiter): 1 s, then 2 s, 4 s, 5 s.
 */
const nextPollMs = (polls: number) => Math.min(5_000, 1_000 * 2 ** (polls - 1));

const iso = (ms: number) => new Date(ms).toISOString();

export const flowLock = plugin({
  id: 'flow.lock', name: 'Project lock', category: 'flow',
  description: 'Takes a lock named `key` in the run\'s project and holds it until the run ends, whatever its outcome: two runs past this step never overlap (e.g. `key: "deploy-{{ inputs.env }}"`). While another run holds it the step waits (durable: the run is released meanwhile, and woken when the holder ends); past `waitTimeoutSeconds` (3600; 0 tries once) it fails naming the holder. A lock the run holds already is taken at once; one held by a run it is part of (a parent) fails at once.',
  input, output: z.object({ key: z.string(), acquiredAt: z.string(), waitedSeconds: z.number() }),
  run: async (c) => {
    const i = inputOf(c, input);
    const remembered = c.prior?.status === 'waiting' ? (c.prior.output as Waiting | null) : null;
    // The key rendered when the wait began is the one waited for.
    const lockKey = remembered?.key ?? i.key;
    const since = remembered?.since ? Date.parse(remembered.since) : Date.now();
    let until = remembered?.until ? Date.parse(remembered.until) : since + i.waitTimeoutSeconds * 1000;
    if (c.deadline !== undefined) until = Math.min(until, c.deadline);
    const got = await c.extra.flowLocks.acquire(c.run.repositoryIdentifier, lockKey, c.run.id);
    if (got.acquired) {
      const waitedSeconds = Math.round((Date.now() - since) / 100) / 10;
      c.note('info', remembered ? `Lock "${lockKey}" acquired after ${waitedSeconds}s` : `Lock "${lockKey}" acquired`);
      return { key: lockKey, acquiredAt: got.acquiredAt.toISOString(), waitedSeconds };
    }
    const holder = got.holder ? `run ${got.holder}` : 'another run';
    if (got.heldByAncestor) throw new StepFailure(`lock "${lockKey}" is held by ${holder}, which this run is part of: it would never be released to this run`, false);
    const now = Date.now();
    if (now >= until) throw new StepFailure(`lock "${lockKey}" not acquired within ${Math.round((until - since) / 1000)}s: held by ${holder}`, false);
    if (!remembered) c.note('info', `Waiting for lock "${lockKey}" held by ${holder}`);
    const polls = (remembered?.polls ?? 0) + 1;
    const wakeAt = Math.min(until, now + nextPollMs(polls));
    throw new Park(wakeAt, `lock:${lockKey}`, 'waiting', { key: lockKey, since: iso(since), until: iso(until), polls, holder: got.holder } satisfies Waiting);
  },
  // A key written without a template is checked when the flow is loaded.
  checkStep: (step) => {
    const k = step.with.key;
    if (typeof k !== 'string' || k.includes('{{')) return [];
    const parsed = key.safeParse(k);
    return parsed.success ? [] : [{ key: 'key', message: parsed.error.issues[0].message }];
  },
});
