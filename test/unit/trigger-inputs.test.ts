import { inputsOf, templateIssues } from '../../src/core/triggers/trigger-inputs.js';
import { keyDigest, newWebhookKey, GIVEN_KEY } from '../../src/core/triggers/webhook-key.js';
import { deliveryKeyOf, parseBody, shownHeaders, signatureOf } from '../../src/core/triggers/webhook-request.js';

const hook = (body: unknown) => ({ type: 'webhook' as const, triggerId: 't1', by: 'ed@acme.io', body, headers: { 'x-source': 'shop' }, query: { env: 'eu' } });

describe('trigger inputs', () => {
  test('without a template: a webhook body that is an object is the inputs; nothing is {}; a cron has none', () => {
    expect(inputsOf(null, hook({ a: 1 }))).toEqual({ a: 1 });
    expect(inputsOf(null, hook(null))).toEqual({});
    expect(inputsOf(null, { type: 'cron', triggerId: 't', by: 'ed@acme.io', scheduledFor: 'x', firedAt: 'y' })).toEqual({});
    expect(() => inputsOf(null, hook([1]))).toThrow(/must be a JSON object/);
    expect(() => inputsOf(null, hook('text'))).toThrow(/must be a JSON object/);
  });

  test('a template renders with trigger in scope; a whole expression keeps its type; failures are 422 by key', () => {
    const t = { id: '{{ trigger.body.n }}', label: 'n={{ trigger.body.n }} from {{ trigger.headers["x-source"] }}/{{ trigger.query.env }}', fixed: 3 };
    expect(inputsOf(t, hook({ n: 7 }))).toEqual({ id: 7, label: 'n=7 from shop/eu', fixed: 3 });
    try {
      inputsOf({ a: '{{ trigger.body.missing.deeper }}', b: 'ok' }, hook({}));
      throw new Error('not refused');
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_content', extra: { errors: [expect.objectContaining({ path: 'inputs.a' })] } });
    }
  });

  test('template problems: syntax, and credentials (inputs are shown with the execution)', () => {
    expect(templateIssues({ a: '{{ 1 + }}', b: { c: '{{ credentials.X }}' }, d: 'plain' }).map((i) => i.path)).toEqual(['inputs.a', 'inputs.b']);
  });
});

describe('webhook requests', () => {
  test('bodies: JSON → value, form → strings, else text; empty → null; broken JSON → 400', () => {
    expect(parseBody(Buffer.from('{"a":[1]}'), 'application/json; charset=utf-8')).toEqual({ a: [1] });
    expect(parseBody(Buffer.from('{"a":1}'), 'application/vnd.api+json')).toEqual({ a: 1 });
    expect(parseBody(Buffer.from('a=1&b=x%20y'), 'application/x-www-form-urlencoded')).toEqual({ a: '1', b: 'x y' });
    expect(parseBody(Buffer.from('hello'), 'text/plain')).toBe('hello');
    expect(parseBody(Buffer.from('{"a":1}'), undefined)).toBe('{"a":1}');
    expect(parseBody(Buffer.alloc(0), 'application/json')).toBeNull();
    expect(() => parseBody(Buffer.from('{'), 'application/json')).toThrow(/not valid JSON/);
  });

  test('headers a flow sees: no credentials, no signatures; delivery keys and signatures read from either name', () => {
    const headers = { authorization: 'Bearer x', cookie: 'c', 'proxy-authorization': 'p', 'x-signature-256': 's', 'x-hub-signature-256': 'h', 'x-hub-signature': 'h1', 'x-a': 'A', 'x-many': ['1', '2'] };
    expect(shownHeaders(headers)).toEqual({ 'x-a': 'A', 'x-many': '1, 2' });
    expect(signatureOf({ 'x-hub-signature-256': 'h' })).toBe('h');
    expect(signatureOf(headers)).toBe('s');
    expect(deliveryKeyOf({ 'idempotency-key': ' k1 ', 'x-github-delivery': 'g' })).toBe('k1');
    expect(deliveryKeyOf({ 'x-github-delivery': 'g' })).toBe('g');
    expect(deliveryKeyOf({})).toBeUndefined();
  });

  test('keys: 43 URL-safe characters from the server; only a digest is kept', () => {
    const key = newWebhookKey();
    expect(key).toMatch(GIVEN_KEY);
    expect(key).toHaveLength(43);
    expect(keyDigest(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(keyDigest(key)).not.toBe(keyDigest(newWebhookKey()));
  });
});
