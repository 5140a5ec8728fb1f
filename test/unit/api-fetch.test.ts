import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { apiFetch } from '../../src/doors/api-fetch.js';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

/** A local server that records what it was sent and answers as `answer` says. */
async function server(answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  let connections = 0;
  const closed: Promise<void>[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(req, res, body);
    });
  });
  s.on('connection', (socket) => {
    connections++;
    closed.push(new Promise((r) => socket.once('close', () => r())));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    url, seen, closed, connections: () => connections,
    stop: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

const json = (res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
};

describe('apiFetch (the doors\' API clients\' fetch)', () => {
  test('sends the method, headers and body, and answers status, headers and JSON like fetch', async () => {
    const srv = await server((_req, res, body) => json(res, 201, { echoed: body }, { 'x-oauth-scopes': 'chat:write', 'set-cookie': ['a=1', 'b=2'] }));
    try {
      const res = await apiFetch(`${srv.url}/api/chat.postMessage?x=1`, { method: 'post', headers: { Authorization: 'Bearer t', 'X-Two': 'y' }, body: 'channel=C1&text=hi' });
      expect(res.status).toBe(201);
      expect(res.ok).toBe(true);
      expect(res.statusText).toBe('Created');
      expect(res.url).toBe(`${srv.url}/api/chat.postMessage?x=1`);
      expect(res.headers.get('x-oauth-scopes')).toBe('chat:write');
      expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
      expect(await res.json()).toEqual({ echoed: 'channel=C1&text=hi' });
      expect(res.bodyUsed).toBe(true);
      await expect(res.text()).rejects.toThrow(TypeError);
      const [seen] = srv.seen;
      expect(seen).toMatchObject({ method: 'POST', url: '/api/chat.postMessage?x=1', body: 'channel=C1&text=hi' });
      // As fetch: a string body without a named type is text; header names arrive lower-cased.
      expect(seen.headers).toMatchObject({ authorization: 'Bearer t', 'x-two': 'y', 'content-type': 'text/plain;charset=UTF-8', 'content-length': '18', accept: '*/*' });
    } finally {
      await srv.stop();
    }
  });

  test('calls one after another share one kept-alive connection', async () => {
    const srv = await server((_req, res) => json(res, 200, { ok: true }));
    try {
      for (let i = 0; i < 4; i++) expect(await (await apiFetch(`${srv.url}/x`, { method: 'POST', body: new URLSearchParams({ i: String(i) }) })).json()).toEqual({ ok: true });
      expect(srv.connections()).toBe(1);
      expect(srv.seen.map((s) => s.body)).toEqual(['i=0', 'i=1', 'i=2', 'i=3']);
      expect(srv.seen[0].headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    } finally {
      await srv.stop();
    }
  });

  test('redirects: refused with redirect "error", handed back with "manual", followed as fetch follows them', async () => {
    const other = await server((_req, res) => json(res, 200, { at: 'other' }));
    const srv = await server((req, res) => {
      if (req.url === '/see-other') return json(res, 303, {}, { location: '/landed' });
      if (req.url === '/temporary') return json(res, 307, {}, { location: '/landed' });
      if (req.url === '/away') return json(res, 302, {}, { location: `${other.url}/there` });
      json(res, 200, { at: req.url });
    });
    try {
      await expect(apiFetch(`${srv.url}/see-other`, { method: 'POST', body: 'x', redirect: 'error' })).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { message: 'redirected (HTTP 303)' } });
      const manual = await apiFetch(`${srv.url}/see-other`, { redirect: 'manual' });
      expect(manual.status).toBe(303);
      expect(manual.headers.get('location')).toBe('/landed');

      // 303 after a POST: a GET without the body or its type.
      expect(await (await apiFetch(`${srv.url}/see-other`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/csv' } })).json()).toEqual({ at: '/landed' });
      expect(srv.seen.at(-1)).toMatchObject({ method: 'GET', url: '/landed', body: '' });
      expect(srv.seen.at(-1)!.headers['content-type']).toBeUndefined();
      // 307 keeps the method, the body and the type the caller named.
      await apiFetch(`${srv.url}/temporary`, { method: 'POST', body: '{"kept":1}', headers: new Headers({ 'Content-Type': 'application/json' }) });
      expect(srv.seen.at(-1)).toMatchObject({ method: 'POST', url: '/landed', body: '{"kept":1}' });
      expect(srv.seen.at(-1)!.headers['content-type']).toBe('application/json');
      // To another origin, the credentials stay behind.
      const res = await apiFetch(`${srv.url}/away`, { headers: { authorization: 'Bearer secret', 'x-kept': '1' } });
      expect(await res.json()).toEqual({ at: 'other' });
      expect(res.url).toBe(`${other.url}/there`);
      expect(other.seen[0].headers.authorization).toBeUndefined();
      expect(other.seen[0].headers['x-kept']).toBe('1');
    } finally {
      await srv.stop();
      await other.stop();
    }
  });

  test('an abort rejects with the signal\'s reason and hangs up', async () => {
    const srv = await server(() => { /* never answers */ });
    try {
      const started = Date.now();
      await expect(apiFetch(`${srv.url}/slow`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(150) })).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(Date.now() - started).toBeLessThan(5_000);
      await srv.closed[0];
      const c = new AbortController();
      c.abort(new Error('gave up'));
      await expect(apiFetch(`${srv.url}/slow`, { signal: c.signal })).rejects.toThrow('gave up');
    } finally {
      await srv.stop();
    }
  });

  test('a compressed answer is decoded; an empty one has no body', async () => {
    const srv = await server((req, res) => {
      if (req.url === '/empty') { res.writeHead(204); res.end(); return; }
      const packed = gzipSync(JSON.stringify({ big: 'x'.repeat(1000) }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': packed.length });
      res.end(packed);
    });
    try {
      const res = await apiFetch(`${srv.url}/packed`);
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(res.headers.get('content-length')).toBeNull();
      expect(((await res.json()) as { big: string }).big).toHaveLength(1000);
      const empty = await apiFetch(`${srv.url}/empty`);
      expect(empty.status).toBe(204);
      expect(empty.body).toBeNull();
      expect(await empty.text()).toBe('');
    } finally {
      await srv.stop();
    }
  });

  test('the body as a stream, a clone and a blob come from the same bytes', async () => {
    const srv = await server((_req, res) => json(res, 200, { n: 1 }));
    try {
      const res = await apiFetch(`${srv.url}/s`);
      const copy = res.clone();
      expect(await copy.json()).toEqual({ n: 1 });
      expect(await new Response(res.body).text()).toBe('{"n":1}');
      expect(res.bodyUsed).toBe(true);
      await expect(res.json()).rejects.toThrow(TypeError);
      expect(await (await (await apiFetch(`${srv.url}/s`)).blob()).text()).toBe('{"n":1}');
    } finally {
      await srv.stop();
    }
  });

  test('a form with a file goes through the platform fetch', async () => {
    const srv = await server((_req, res) => json(res, 200, { ok: true }));
    try {
      const form = new FormData();
      form.append('file', new Blob(['file content']), 'notes.txt');
      const res = await apiFetch(`${srv.url}/upload`, { method: 'POST', body: form });
      expect(await res.json()).toEqual({ ok: true });
      expect(srv.seen[0].headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
      expect(srv.seen[0].body).toContain('filename="notes.txt"');
      expect(srv.seen[0].body).toContain('file content');
    } finally {
      await srv.stop();
    }
  });

  test('an unreachable server fails like fetch: TypeError "fetch failed" with the cause', async () => {
    const srv = await server(() => {});
    const { url } = srv;
    await srv.stop();
    await expect(apiFetch(`${url}/gone`)).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { code: 'ECONNREFUSED' } });
    await expect(apiFetch('ftp://127.0.0.1/x')).rejects.toMatchObject({ message: 'fetch failed', cause: { message: 'unsupported protocol ftp:' } });
  });
});
