import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Notice } from '../../src/core/notify/notice.js';
import { Notifier, SIGNATURE_HEADER, signBody } from '../../src/core/notify/notifier.js';

interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local webhook receiver answering with the status chosen per path. */
let server: http.Server;
let base: string;
const received: Received[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      const status = m ? Number(m[1]) : 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: status < 300 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

const notice: Notice = {
  event: 'run.finished',
  runId: 'run-123',
  taskType: 'deploy',
  repositoryIdentifier: 'acme/app',
  status: 'completed',
  result: { version: '1.2.3' },
  error: null,
};
const SECRET = 'a-very-secret-webhook-key';

describe('signBody', () => {
  test('is the HMAC-SHA256 hex digest with a sha256= prefix', () => {
    const body = '{"hello":"world"}';
    const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    expect(signBody(SECRET, body)).toBe(expected);
    expect(signBody(SECRET, body)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  test('a known vector', () => {
    // RFC 4231-style check computed independently: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
    expect(signBody('key', 'The quick brown fox jumps over the lazy dog')).toBe(
      'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
  });

  test('depends on both the secret and the body', () => {
    expect(signBody('one', 'body')).not.toBe(signBody('two', 'body'));
    expect(signBody('one', 'body')).not.toBe(signBody('one', 'body2'));
  });
});

describe('Notifier.notify', () => {
  test('posts the notice as JSON with a signature when a secret is set', async () => {
    const n = new Notifier(SECRET);
    const out = await n.notify({ type: 'webhook', webhook: { url: `${base}/hook` } }, notice);
    expect(out).toEqual({ delivered: true });
    expect(received).toHaveLength(1);
    const r = received[0];
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/hook');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['user-agent']).toBe('Flowgate');
    expect(JSON.parse(r.body)).toEqual(notice);
    expect(r.headers[SIGNATURE_HEADER]).toBe(`sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`);
  });

  test('the signature header name is x-flowgate-signature-256', () => {
    expect(SIGNATURE_HEADER).toBe('x-flowgate-signature-256');
  });

  test('sends no signature without a secret', async () => {
    const out = await new Notifier(undefined).notify({ type: 'webhook', webhook: { url: `${base}/plain` } }, notice);
    expect(out.delivered).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0].headers[SIGNATURE_HEADER]).toBeUndefined();
    expect(JSON.parse(received[0].body)).toEqual(notice);
  });

  test('an empty secret sends no signature', async () => {
    await new Notifier('').notify({ type: 'webhook', webhook: { url: `${base}/plain` } }, notice);
    expect(received[0].headers[SIGNATURE_HEADER]).toBeUndefined();
  });

  test('a 2xx other than 200 counts as delivered', async () => {
    const out = await new Notifier(SECRET).notify({ type: 'webhook', webhook: { url: `${base}/status/204` } }, notice);
    expect(out).toEqual({ delivered: true });
  });

  test('no callback means nothing is delivered', async () => {
    const n = new Notifier(SECRET);
    expect(await n.notify(undefined, notice)).toEqual({ delivered: false, reason: 'the run has no callback destination' });
    expect(await n.notify(null, notice)).toEqual({ delivered: false, reason: 'the run has no callback destination' });
    expect(received).toHaveLength(0);
  });

  test('callback type none means nothing is delivered', async () => {
    const out = await new Notifier(SECRET).notify({ type: 'none' }, notice);
    expect(out.delivered).toBe(false);
    expect(out.reason).toBe('the run has no callback destination');
    expect(received).toHaveLength(0);
  });

  test('slack and other chat destinations report that no integration is configured', async () => {
    const n = new Notifier(SECRET);
    const slack = await n.notify({ type: 'slack', slack: { channel: 'C1', threadTs: '1.2' } }, notice);
    expect(slack.delivered).toBe(false);
    expect(slack.reason).toBe('no slack integration is configured on this server');
    const gh = await n.notify({ type: 'github', github: {} }, notice);
    expect(gh).toEqual({ delivered: false, reason: 'no github integration is configured on this server' });
    expect(received).toHaveLength(0);
  });

  test('a webhook callback without a url is not delivered', async () => {
    const n = new Notifier(SECRET);
    expect(await n.notify({ type: 'webhook' }, notice)).toEqual({ delivered: false, reason: 'the webhook callback has no url' });
    expect(await n.notify({ type: 'webhook', webhook: { url: 42 } }, notice)).toEqual({
      delivered: false,
      reason: 'the webhook callback has no url',
    });
    expect(received).toHaveLength(0);
  });

  test('a non-2xx answer throws naming the event, the run and the status', async () => {
    const n = new Notifier(SECRET);
    const message: Notice = { event: 'run.message', runId: 'run-777', taskType: 't', repositoryIdentifier: 'r', message: 'hi' };
    await expect(n.notify({ type: 'webhook', webhook: { url: `${base}/status/500?token=secret` } }, message)).rejects.toThrow(
      `posting run.message for run run-777 to webhook ${base}: HTTP 500`,
    );
    expect(received).toHaveLength(1);
  });

  test('a 4xx answer throws too, without the path or query in the message', async () => {
    const n = new Notifier(undefined);
    const err = await n.notify({ type: 'webhook', webhook: { url: `${base}/status/404/private?key=abc` } }, notice).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain('run.finished');
    expect(err!.message).toContain('run-123');
    expect(err!.message).toContain('HTTP 404');
    expect(err!.message).not.toContain('private');
    expect(err!.message).not.toContain('key=abc');
  });

  test('uses the given fetch implementation', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), init: init ?? {} });
      return new Response(null, { status: 202 });
    }) as typeof fetch;
    const out = await new Notifier(SECRET, fakeFetch).notify({ type: 'webhook', webhook: { url: 'https://hooks.example.com/x' } }, notice);
    expect(out).toEqual({ delivered: true });
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('https://hooks.example.com/x');
    expect(calls[0].init.method).toBe('POST');
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers[SIGNATURE_HEADER]).toBe(signBody(SECRET, calls[0].init.body as string));
  });
});
