import type { SweepTask } from '../maintenance/sweeper.js';
import type { RunLocks } from './run-locks.js';

/** The scheduled cleanup: a lock whose run was cancelled or finished is released. */
export const lockCleanup = (locks: RunLocks): SweepTask => ({ name: 'locks', run: async () => { await locks.releaseEnded(); } });
