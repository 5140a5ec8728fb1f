import type { MikroORM } from '@mikro-orm/postgresql';
import { RunLock } from '../../db/entities/run-lock.js';
import { SYSTEM, type Actor, type AuditLog } from '../audit/audit-log.js';

/** Which run holds which mutex; a lock re-acquired by another run moves to it. */
export class RunLocks {
  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog) {}

  async track(lockKey: string, runId: string, actor: Actor): Promise<RunLock> {
    const rows = await this.orm.em.fork().getConnection().execute<{ lock_key: string; run_id: string; acquired_at: Date }[]>(
      `insert into run_locks (lock_key, run_id, acquired_at) values (?, ?, now())
       on conflict (lock_key) do update set run_id = excluded.run_id, acquired_at = excluded.acquired_at
       returning lock_key, run_id, acquired_at`, [lockKey, runId]);
    await this.audit.record(actor, 'lock.tracked', 'run', runId, { lockKey });
    return Object.assign(new RunLock(), { lockKey: rows[0].lock_key, runId: rows[0].run_id, acquiredAt: new Date(rows[0].acquired_at) });
  }

  forRun(runId: string): Promise<RunLock[]> {
    return this.orm.em.fork().find(RunLock, { runId }, { orderBy: { lockKey: 'asc' } });
  }

  /** Releases locks whose run has ended (finished or cancelled); returns them. */
  async releaseEnded(): Promise<{ lockKey: string; runId: string }[]> {
    const rows = await this.orm.em.fork().getConnection().execute<{ lock_key: string; run_id: string }[]>(
      `delete from run_locks l using runs r where r.id = l.run_id
         and r.status in ('completed','partial','failed','cancelled','timed_out')
       returning l.lock_key, l.run_id`);
    for (const r of rows) await this.audit.record(SYSTEM, 'lock.released', 'run', r.run_id, { lockKey: r.lock_key });
    return rows.map((r) => ({ lockKey: r.lock_key, runId: r.run_id }));
  }
}
