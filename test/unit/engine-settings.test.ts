import { ConfigError, loadConfig } from '../../src/config.js';
import { isConnectionError } from '../../src/executor/executor.js';

test('FLOWGATE_LEASE_MS defaults to 30 s and names itself when out of range', () => {
  expect(loadConfig({}).leaseMs).toBe(30_000);
  expect(loadConfig({ FLOWGATE_LEASE_MS: '5000' }).leaseMs).toBe(5000);
  for (const bad of ['999', '600001', 'soon', '1.5']) {
    expect(() => loadConfig({ FLOWGATE_LEASE_MS: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ FLOWGATE_LEASE_MS: bad })).toThrow(/FLOWGATE_LEASE_MS/);
  }
});

test('a flush is retried only for errors that say the database could not be reached', () => {
  expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
  expect(isConnectionError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
  expect(isConnectionError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
  expect(isConnectionError(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
  expect(isConnectionError(Object.assign(new Error('connection failure'), { code: '08006' }))).toBe(true);
  // A bad row or statement fails the same way every time: it is isolated, not retried.
  expect(isConnectionError(Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' }))).toBe(false);
  expect(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
});

test('FLOWGATE_HEAP_GROWTH_PERCENT defaults to 100, 0 leaves it to V8, and names itself when out of range', () => {
  expect(loadConfig({}).heapGrowthPercent).toBe(100);
  expect(loadConfig({ FLOWGATE_HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
  expect(loadConfig({ FLOWGATE_HEAP_GROWTH_PERCENT: '50' }).heapGrowthPercent).toBe(50);
  for (const bad of ['-1', '301', 'half', '1.5']) {
    expect(() => loadConfig({ FLOWGATE_HEAP_GROWTH_PERCENT: bad })).toThrow(/FLOWGATE_HEAP_GROWTH_PERCENT/);
  }
});
