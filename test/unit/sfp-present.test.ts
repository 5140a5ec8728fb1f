import type { Run } from '../../src/db/entities/run.js';
import { RUN_STATUSES, type RunStatus } from '../../src/core/status.js';
import { aggregateChildren, sfpStatus } from '../../src/http/sfp/present.js';

const child = (status: RunStatus) => ({ status }) as unknown as Run;
const children = (...statuses: RunStatus[]) => statuses.map(child);

describe('sfpStatus', () => {
  test.each<[RunStatus, string]>([
    ['queued', 'Running'],
    ['running', 'Running'],
    ['paused', 'Running'],
    ['waiting', 'Waiting'],
    ['suspended', 'Suspended'],
    ['completed', 'Completed'],
    ['partial', 'Completed'],
    ['failed', 'Failed'],
    ['timed_out', 'Failed'],
    ['cancelled', 'Cancelled'],
  ])('%s → %s', (status, expected) => {
    expect(sfpStatus(status)).toBe(expected);
  });

  test('every run status has a mapping', () => {
    for (const s of RUN_STATUSES) expect(typeof sfpStatus(s)).toBe('string');
  });
});

describe('aggregateChildren', () => {
  test('no children: total 0 and no status', () => {
    expect(aggregateChildren([])).toEqual({ total: 0, byStatus: {}, status: null });
  });

  test('counts by sfp status', () => {
    const a = aggregateChildren(children('completed', 'partial', 'running', 'queued', 'failed', 'timed_out', 'cancelled'));
    expect(a.total).toBe(7);
    expect(a.byStatus).toEqual({ Completed: 2, Running: 2, Failed: 2, Cancelled: 1 });
  });

  test('any failure makes the aggregate Failed, even while others run', () => {
    expect(aggregateChildren(children('completed', 'failed', 'running')).status).toBe('Failed');
    expect(aggregateChildren(children('timed_out', 'suspended')).status).toBe('Failed');
  });

  test('unfinished children: Suspended over Waiting over Running', () => {
    expect(aggregateChildren(children('completed', 'running')).status).toBe('Running');
    expect(aggregateChildren(children('running', 'waiting', 'completed')).status).toBe('Waiting');
    expect(aggregateChildren(children('running', 'waiting', 'suspended')).status).toBe('Suspended');
    expect(aggregateChildren(children('queued', 'paused')).status).toBe('Running');
  });

  test('all cancelled is Cancelled', () => {
    expect(aggregateChildren(children('cancelled', 'cancelled'))).toEqual({ total: 2, byStatus: { Cancelled: 2 }, status: 'Cancelled' });
  });

  test('all completed (including partial) is Completed', () => {
    expect(aggregateChildren(children('completed', 'partial')).status).toBe('Completed');
  });

  test('a mix of completed and cancelled is Completed', () => {
    expect(aggregateChildren(children('completed', 'cancelled')).status).toBe('Completed');
  });

  test('a single child takes its own sfp status', () => {
    for (const s of RUN_STATUSES) expect(aggregateChildren([child(s)]).status).toBe(sfpStatus(s));
  });
});
