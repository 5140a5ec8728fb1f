import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';

/** Failed logins counted per username and per address over a fixed window, in PostgreSQL (every replica sees them). */
export const THROTTLE = { windowSeconds: 15 * 60, perUsername: 5, perIp: 20 } as const;

export interface Throttled {
  /** Seconds to the end of the window that is full. */
  retryAfter: number;
  /** Which counts are full, each named only the first time in its window (audited once). */
  firstTime: ('username' | 'ip')[];
}

const WINDOW = `interval '${THROTTLE.windowSeconds} seconds'`;

export class LoginThrottle {
  constructor(private readonly orm: MikroORM) {}

  /** Whether the next attempt for `username` from `ip` is refused, and for how long; marks a full window as reported. */
  async check(username: string, ip: string): Promise<Throttled | undefined> {
    const rows = await sql<{ scope: 'username' | 'ip'; retry_after: number; first: boolean }>(this.orm, `
      with hit as (
        select scope, key, window_start, throttled_at from login_failures
        where ((scope = 'username' and key = ? and failures >= ?) or (scope = 'ip' and key = ? and failures >= ?))
          and window_start > now() - ${WINDOW}),
      marked as (
        update login_failures f set throttled_at = now() from hit
        where f.scope = hit.scope and f.key = hit.key and (hit.throttled_at is null or hit.throttled_at < hit.window_start)
        returning f.scope)
      select hit.scope, greatest(1, ceil(extract(epoch from hit.window_start + ${WINDOW} - now())))::int as retry_after,
        exists (select 1 from marked m where m.scope = hit.scope) as first
      from hit`, [username, THROTTLE.perUsername, ip, THROTTLE.perIp]);
    if (!rows.length) return undefined;
    return { retryAfter: Math.max(...rows.map((r) => r.retry_after)), firstTime: rows.filter((r) => r.first).map((r) => r.scope) };
  }

  /** Counts a failure against both; a window that has ended starts again. */
  async failed(username: string, ip: string): Promise<void> {
    await sql(this.orm, `
      insert into login_failures as f (scope, key, window_start, failures) values ('username', ?, now(), 1), ('ip', ?, now(), 1)
      on conflict (scope, key) do update set
        failures = case when f.window_start > now() - ${WINDOW} then f.failures + 1 else 1 end,
        window_start = case when f.window_start > now() - ${WINDOW} then f.window_start else now() end`, [username, ip]);
    // Ended windows are dropped now and then, so names tried once do not pile up.
    if (Math.random() < 0.01) await sql(this.orm, `delete from login_failures where window_start < now() - ${WINDOW}`);
  }

  /** A successful login clears its username's count (not its address's). */
  async succeeded(username: string): Promise<void> {
    await sql(this.orm, `delete from login_failures where scope = 'username' and key = ?`, [username]);
  }
}
