import { Writable } from 'node:stream';
import { pino } from 'pino';
import { SampledWarning } from '../../src/observability/sampled-log.js';

test('a flood of warnings logs at most one line per interval, with how many it suppressed', () => {
  const lines: any[] = [];
  const log = pino({ level: 'warn' }, new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
  let now = 1_000_000;
  const warning = new SampledWarning(log, 'unauthenticated requests refused', 60_000, () => now);

  warning.note({ surface: 'rest' });
  for (let i = 0; i < 99; i++) { now += 100; warning.note({ surface: 'github' }); }
  expect(lines.map((l) => [l.msg, l.surface, l.suppressedSinceLast])).toEqual([['unauthenticated requests refused', 'rest', 0]]);

  now = 1_000_000 + 60_000;
  warning.note({ surface: 'slack' });
  warning.note({ surface: 'slack' });
  expect(lines.slice(1).map((l) => [l.surface, l.suppressedSinceLast])).toEqual([['slack', 99]]);
});
