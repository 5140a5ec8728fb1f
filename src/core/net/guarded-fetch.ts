import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { normalizeHost, type OutboundPolicy } from './outbound-policy.js';
import { REDIRECT_STATUSES, redirectHop } from './redirect.js';

/** At most this many redirects are followed, each checked like the first request. */
export const MAX_REDIRECTS = 5;

/** An outbound request went to an address the policy refuses; nothing was sent to it. */
export class OutboundRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefused';
  }
}

export type Resolved = { address: string; family: number }[];

/** A refused request, as told to `onRefused` (for the audit log) before the caller sees the error. */
export interface Refusal { host: string; address: string; reason: string; redirect: boolean }

export interface GuardHooks {
  onRefused?(refusal: Refusal): Promise<void> | void;
  /** Resolves a host name to every address (default: the system resolver, as `dns.lookup`). */
  lookup?(host: string): Promise<Resolved>;
}

/**
 * A `fetch` for addresses chosen by flows, payloads and callers. The host is resolved once,
 * every address is checked against the policy, and the connection is made only to the
 * addresses that passed (no second DNS answer can slip in between check and connect). Redirects are
 * followed by hand, each hop checked again. Errors look like fetch's: a refusal is an
 * OutboundRefused, a network failure a `TypeError('fetch failed')` with the cause, an abort
 * the signal's reason.
 */
export function guardedFetch(policy: OutboundPolicy, hooks: GuardHooks = {}): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    if (typeof input !== 'string' && !(input instanceof URL)) throw new TypeError('guarded fetch takes a URL, not a Request');
    const signal = init.signal ?? undefined;
    let url = new URL(String(input));
    let method = (init.method ?? 'GET').toUpperCase();
    let body = bodyOf(init.body);
    const headers = new Headers(init.headers);
    if (!headers.has('accept')) headers.set('accept', '*/*');
    for (let hop = 0; ; hop++) {
      signal?.throwIfAborted();
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('fetch failed', { cause: new Error(`unsupported protocol ${url.protocol}`) });
      const addresses = await resolve(url, policy, hop, signal, hooks);
      const res = await send(url, method, headers, body, addresses, signal);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(status) || !location || init.redirect === 'manual') return toResponse(res, method);
      res.resume();
      if (init.redirect === 'error') throw new TypeError('fetch failed', { cause: new Error(`redirected (HTTP ${status})`) });
      if (hop >= MAX_REDIRECTS) throw new TypeError('fetch failed', { cause: new Error(`more than ${MAX_REDIRECTS} redirects`) });
      const next = new URL(location, url);
      const hopTo = redirectHop(status, method, url, next);
      method = hopTo.method;
      if (hopTo.withoutBody) body = undefined;
      for (const h of hopTo.drop) headers.delete(h);
      url = next;
    }
  }) as typeof fetch;
}

function bodyOf(body: RequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  throw new TypeError('guarded fetch sends string or byte bodies only');
}

/**
 * Resolves the host once and keeps the addresses the policy allows; the connection is made to
 * those only. No allowed address refuses the request (the first refused address says why).
 */
async function resolve(url: URL, policy: OutboundPolicy, hop: number, signal: AbortSignal | undefined, hooks: GuardHooks): Promise<Resolved> {
  const host = normalizeHost(url.hostname);
  const literal = isIP(host);
  let addresses: Resolved;
  if (literal) addresses = [{ address: host, family: literal }];
  else {
    try {
      addresses = await abortable(hooks.lookup ? hooks.lookup(host) : dnsLookup(host, { all: true, verbatim: true }), signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new TypeError('fetch failed', { cause: err });
    }
  }
  if (!addresses.length) throw new TypeError('fetch failed', { cause: Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' }) });
  const allowed = addresses.filter(({ address }) => policy.refusal(host, address) === undefined);
  if (allowed.length) return allowed;
  const { address } = addresses[0];
  const why = policy.refusal(host, address)!;
  await hooks.onRefused?.({ host, address, reason: why, redirect: hop > 0 });
  const what = hop === 0 ? 'refused' : `redirect to ${url.host} refused`;
  throw new OutboundRefused(`${what}: ${why} (loopback, private, link-local and metadata addresses are reached only when listed in FLOWGATE_OUTBOUND_ALLOW)`);
}

/** Hands the connection the addresses already checked, never asking DNS again. */
function pinned(addresses: Resolved): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const list = addresses.filter((a) => !family || a.family === family);
    if (!list.length) {
      callback(Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      return;
    }
    if (options.all) callback(null, list);
    else callback(null, list[0].address, list[0].family);
  };
}

function send(url: URL, method: string, headers: Headers, body: Buffer | undefined, addresses: Resolved, signal: AbortSignal | undefined): Promise<http.IncomingMessage> {
  const outgoing: Record<string, string> = Object.fromEntries(headers);
  if (body) outgoing['content-length'] = String(body.length);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolvePromise, reject) => {
    const req = request({
      protocol: url.protocol, hostname: normalizeHost(url.hostname), port: url.port || undefined, path: `${url.pathname}${url.search}`,
      method, headers: outgoing, lookup: pinned(addresses), agent: false, signal,
    }, resolvePromise);
    req.on('error', (err) => reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err })));
    req.end(body);
  });
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function toResponse(res: http.IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    for (const v of [value ?? []].flat()) headers.append(name, v);
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) {
    res.destroy();
    throw new TypeError('fetch failed', { cause: new Error(`unexpected HTTP status ${status}`) });
  }
  if (method === 'HEAD' || NULL_BODY.has(status)) {
    res.resume();
    return new Response(null, { status, headers });
  }
  let stream: Readable = res;
  const decoder = decoderFor(headers.get('content-encoding'));
  if (decoder) {
    res.on('error', (err) => decoder.destroy(err));
    stream = res.pipe(decoder);
    headers.delete('content-encoding');
    headers.delete('content-length');
  }
  return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, { status, headers });
}

function decoderFor(encoding: string | null) {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip': case 'x-gzip': return zlib.createGunzip();
    case 'deflate': return zlib.createInflate();
    case 'br': return zlib.createBrotliDecompress();
    default: return undefined;
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((res, rej) => {
    const onAbort = () => rej(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(res, rej).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
