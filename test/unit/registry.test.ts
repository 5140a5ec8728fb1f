import { AppError } from '../../src/errors.js';
import { manifestSchema, type FlowDefinition } from '../../src/core/registry/manifest-schema.js';
import { FlowRegistry } from '../../src/core/registry/registry.js';

const def = (id: string, parameters: unknown[] = []): FlowDefinition =>
  manifestSchema.parse({ id, name: id, parameters, steps: [{ ref: 'a', type: 'log', with: { message: 'm' } }] });

const flow = def('deploy', [
  { name: 'target', type: 'string', required: true, description: 'Where to deploy' },
  { name: 'count', type: 'number', default: 3 },
  { name: 'tags', type: 'array' },
  { name: 'meta', type: 'object' },
  { name: 'dryRun', type: 'boolean', default: false },
  { name: 'env', type: 'string', enum: ['dev', 'prod'] },
  { name: 'level', type: 'number', enum: [1, 2] },
]);
const registry = new FlowRegistry([flow, def('other')]);

/** Calls applyParameters expecting an AppError and returns it. */
function rejection(payload: Record<string, unknown>, d: FlowDefinition = flow, prefix?: string): AppError {
  try {
    registry.applyParameters(d, payload, prefix);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected applyParameters to throw');
}

describe('FlowRegistry lookups', () => {
  test('list, find and get', () => {
    expect(registry.list().map((d) => d.id)).toEqual(['deploy', 'other']);
    expect(registry.find('deploy')).toBe(flow);
    expect(registry.find('nope')).toBeUndefined();
    expect(registry.get('other').id).toBe('other');
  });

  test('get of an unknown id is not_found', () => {
    try {
      registry.get('nope');
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('not_found');
      expect((err as AppError).status).toBe(404);
      expect((err as AppError).message).toContain('"nope"');
    }
  });
});

describe('applyParameters', () => {
  test('applies defaults and keeps given values', () => {
    const out = registry.applyParameters(flow, { target: 'prod-1' });
    expect(out).toEqual({ target: 'prod-1', count: 3, dryRun: false });
  });

  test('given values win over defaults', () => {
    expect(registry.applyParameters(flow, { target: 't', count: 7, dryRun: true })).toEqual({ target: 't', count: 7, dryRun: true });
  });

  test('null counts as missing and takes the default', () => {
    expect(registry.applyParameters(flow, { target: 't', count: null }).count).toBe(3);
  });

  test('a falsy but present value is kept', () => {
    const out = registry.applyParameters(flow, { target: '', count: 0, dryRun: false });
    expect(out.target).toBe('');
    expect(out.count).toBe(0);
  });

  test('does not modify the given payload', () => {
    const payload = { target: 't' };
    registry.applyParameters(flow, payload);
    expect(payload).toEqual({ target: 't' });
  });

  test('payload keys that are not parameters pass through', () => {
    expect(registry.applyParameters(flow, { target: 't', extra: 1 }).extra).toBe(1);
  });

  test('a flow without parameters accepts any payload', () => {
    expect(registry.applyParameters(def('other'), { a: 1 })).toEqual({ a: 1 });
  });

  test('missing required parameter is bad_request naming payload.<param>', () => {
    const err = rejection({});
    expect(err.code).toBe('bad_request');
    expect(err.status).toBe(400);
    expect(err.message).toBe('Invalid parameters for flow type "deploy"');
    expect(err.details).toHaveLength(1);
    expect(err.details[0].field).toBe('payload.target');
    expect(err.details[0].location).toBe('body');
    expect(err.details[0].message).toContain('required');
    expect(err.details[0].message).toContain('deploy');
    expect(err.details[0].message).toContain('Where to deploy');
  });

  test('null for a required parameter without default is missing', () => {
    expect(rejection({ target: null }).details.map((d) => d.field)).toEqual(['payload.target']);
  });

  test('the prefix is configurable', () => {
    expect(rejection({}, flow, 'with.payload').details[0].field).toBe('with.payload.target');
  });

  test.each([
    ['target', 123, 'must be a string, got number'],
    ['count', '3', 'must be a number, got string'],
    ['count', Number.NaN, 'must be a number, got number'],
    ['count', Number.POSITIVE_INFINITY, 'must be a number, got number'],
    ['tags', 'a,b', 'must be an array, got string'],
    ['tags', { a: 1 }, 'must be an array, got object'],
    ['meta', ['x'], 'must be an object, got array'],
    ['meta', 'x', 'must be an object, got string'],
    ['dryRun', 'true', 'must be a boolean, got string'],
    ['dryRun', 1, 'must be a boolean, got number'],
  ])('%s = %p is rejected: %s', (name, value, message) => {
    const err = rejection({ target: 't', [name]: value });
    expect(err.code).toBe('bad_request');
    expect(err.details).toEqual([{ field: `payload.${name}`, message, location: 'body' }]);
  });

  test('right types are accepted', () => {
    const out = registry.applyParameters(flow, { target: 't', count: 1.5, tags: ['a'], meta: { k: 'v' }, dryRun: true, env: 'dev', level: 2 });
    expect(out).toEqual({ target: 't', count: 1.5, tags: ['a'], meta: { k: 'v' }, dryRun: true, env: 'dev', level: 2 });
  });

  test('enum values are enforced for strings and numbers', () => {
    expect(rejection({ target: 't', env: 'staging' }).details).toEqual([
      { field: 'payload.env', message: 'must be one of dev, prod', location: 'body' },
    ]);
    expect(rejection({ target: 't', level: 3 }).details).toEqual([{ field: 'payload.level', message: 'must be one of 1, 2', location: 'body' }]);
  });

  test('an enum value of the wrong type reports the type', () => {
    expect(rejection({ target: 't', level: '1' }).details[0].message).toBe('must be a number, got string');
  });

  test('every problem is reported at once', () => {
    const err = rejection({ count: 'x', tags: {}, env: 'qa' });
    expect(err.details.map((d) => d.field)).toEqual(['payload.target', 'payload.count', 'payload.tags', 'payload.env']);
  });
});
