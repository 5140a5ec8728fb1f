import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardedFetch, OutboundRefused } from '../../src/core/net/guarded-fetch.js';
import { OutboundPolicy } from '../../src/core/net/outbound-policy.js';
import type { Notice } from '../../src/core/notify/notice.js';
import { Notifier as GuardedNotifier, SIGNATURE_HEADER } from '../../src/core/notify/notifier.js';
import { signPayload, verifySignature } from '../../src/core/signing.js';

/** The receiver below listens on loopback, which the outbound guard refuses unless allowed. */
const localFetch = guardedFetch(new OutboundPolicy(['127.0.0.0/8']));
class Notifier extends GuardedNotifier {
  constructor(secret: string | undefined, fetchImpl: typeof fetch = localFetch) {
    super(secret, fetchImpl);
  }
}

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

/** The documented receiver check, computed independently of src/core/signing.ts. */
function receiverAccepts(header: string, body: string, secret: string, purpose: string, nowSec = Date.now() / 1000): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  if (Math.abs(nowSec - Number(parts.t)) > 300) return false;
  const key = createHmac('sha256', secret).update(`flowgate/${purpose}`).digest();
  return parts.v1 === createHmac('sha256', key).update(`${parts.t}.${purpose}.${body}`).digest('hex');
}

describe('signPayload', () => {
  test('is t=<unix seconds>,v1=<hex> over t.purpose.body with the purpose key', () => {
    const body = '{"hello":"world"}';
    const header = signPayload(SECRET, 'run.notice', body, 1_700_000_000_500);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    const key = createHmac('sha256', SECRET).update('flowgate/run.notice').digest();
    expect(header).toBe(`t=1700000000,v1=${createHmac('sha256', key).update(`1700000000.run.notice.${body}`).digest('hex')}`);
    expect(receiverAccepts(header, body, SECRET, 'run.notice', 1_700_000_000)).toBe(true);
  });

  test('depends on the secret, the body, the purpose and the time', () => {
    const at = 1_700_000_000_000;
    const base = signPayload('one', 'run.notice', 'body', at);
    expect(signPayload('two', 'run.notice', 'body', at)).not.toBe(base);
    expect(signPayload('one', 'run.notice', 'body2', at)).not.toBe(base);
    expect(signPayload('one', 'cicd.dispatch', 'body', at)).not.toBe(base);
    expect(signPayload('one', 'run.notice', 'body', at + 1000)).not.toBe(base);
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
    const header = r.headers[SIGNATURE_HEADER] as string;
    expect(receiverAccepts(header, r.body, SECRET, 'run.notice')).toBe(true);
    expect(verifySignature(header, r.body, SECRET, 'run.notice')).toBe(true);
    // Not valid as an approval decision: the purpose is part of the signature.
    expect(verifySignature(header, r.body, SECRET, 'approval.decision')).toBe(false);
  });

  test('an external approval decision is signed for approval.decision, not run.notice', async () => {
    const decided: Notice = { event: 'approval.decided', runId: null, repositoryIdentifier: 'acme/app' };
    await new Notifier(SECRET).notify({ type: 'webhook', webhook: { url: `${base}/decisions` } }, decided);
    const r = received[0];
    expect(verifySignature(r.headers[SIGNATURE_HEADER] as string, r.body, SECRET, 'approval.decision')).toBe(true);
    expect(verifySignature(r.headers[SIGNATURE_HEADER] as string, r.body, SECRET, 'run.notice')).toBe(false);
  });

  test('without an allow-list a loopback callback is refused and nothing is sent', async () => {
    const err = await new GuardedNotifier(SECRET).notify({ type: 'webhook', webhook: { url: `${base}/hook?token=abc` } }, notice).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(OutboundRefused);
    expect(err!.message).toBe(`posting run.finished for run run-123 to webhook ${base}: refused: 127.0.0.1 is a loopback address (loopback, private, link-local and metadata addresses are reached only when listed in FLOWGATE_OUTBOUND_ALLOW)`);
    expect(received).toHaveLength(0);
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
    expect(verifySignature(headers[SIGNATURE_HEADER], calls[0].init.body as string, SECRET, 'run.notice')).toBe(true);
  });
});
