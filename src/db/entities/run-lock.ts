import { EntitySchema } from '@mikro-orm/core';

/** Which run holds which mutex (tracked for external engines; released when the run ends). */
export class RunLock {
  lockKey!: string;
  runId!: string;
  acquiredAt: Date = new Date();
}

export const RunLockSchema = new EntitySchema<RunLock>({
  class: RunLock,
  tableName: 'run_locks',
  properties: {
    lockKey: { type: 'text', primary: true },
    runId: { type: 'uuid' },
    acquiredAt: { type: 'datetime' },
  },
});
