import { parseSince } from '../../src/core/runs/run-query.js';

const now = Date.parse('2026-03-15T12:00:00.000Z');

describe('parseSince', () => {
  test.each([
    ['30m', '2026-03-15T11:30:00.000Z'],
    ['24h', '2026-03-14T12:00:00.000Z'],
    ['7d', '2026-03-08T12:00:00.000Z'],
    ['2w', '2026-03-01T12:00:00.000Z'],
    ['45s', '2026-03-15T11:59:15.000Z'],
    ['0h', '2026-03-15T12:00:00.000Z'],
    [' 24h ', '2026-03-14T12:00:00.000Z'],
    ['24 h', '2026-03-14T12:00:00.000Z'],
  ])('%j relative to now', (input, expected) => {
    const d = parseSince(input, now);
    expect(d).toBeInstanceOf(Date);
    expect(d!.toISOString()).toBe(expected);
  });

  test('defaults to the current time', () => {
    const before = Date.now();
    const d = parseSince('1h')!;
    const after = Date.now();
    expect(d.getTime()).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(d.getTime()).toBeLessThanOrEqual(after - 3_600_000);
  });

  test.each([
    ['2026-01-02T03:04:05Z', '2026-01-02T03:04:05.000Z'],
    ['2026-01-02T03:04:05.123Z', '2026-01-02T03:04:05.123Z'],
    ['2026-01-02T03:04:05+02:00', '2026-01-02T01:04:05.000Z'],
    ['2026-01-02', '2026-01-02T00:00:00.000Z'],
  ])('ISO timestamp %s', (input, expected) => {
    expect(parseSince(input, now)!.toISOString()).toBe(expected);
  });

  test('an ISO timestamp does not depend on now', () => {
    expect(parseSince('2026-01-02T03:04:05Z', 0)!.getTime()).toBe(parseSince('2026-01-02T03:04:05Z', now)!.getTime());
  });

  test.each(['', 'garbage', 'yesterday', '10y', '-5m', '5', 'm', '1.5h', '2026-13-45', '2026-02-30Tnope', '12/01/2026', 'h24'])(
    '%j is undefined',
    (input) => {
      expect(parseSince(input, now)).toBeUndefined();
    },
  );
});
