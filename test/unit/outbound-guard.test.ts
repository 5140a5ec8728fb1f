import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ConfigError, loadConfig } from '../../src/config.js';
import { parseCidr, parseIp } from '../../src/core/net/addresses.js';
import { guardedFetch, OutboundRefused, type Refusal } from '../../src/core/net/guarded-fetch.js';
import { addressKind, allowListProblems, OutboundPolicy } from '../../src/core/net/outbound-policy.js';

describe('addressKind', () => {
  test.each([
    ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'], ['100.64.0.1', 'shared (carrier-grade NAT)'], ['169.254.169.254', 'cloud metadata'], ['169.254.1.1', 'link-local'],
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'], ['240.0.0.1', 'reserved'], ['192.0.2.10', 'documentation'], ['198.18.0.1', 'benchmarking'],
  ])('IPv4 %s is %s', (ip, kind) => {
    expect(addressKind(ip)).toBe(kind);
  });

  test.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '192.169.0.1', '169.253.255.255', '223.255.255.255'])('IPv4 %s is public', (ip) => {
    expect(addressKind(ip)).toBeUndefined();
  });

  test.each([
    ['::1', 'loopback'], ['[::1]', 'loopback'], ['0:0:0:0:0:0:0:1', 'loopback'], ['::', 'unspecified'], ['fc00::1', 'private (unique local)'],
    ['fd12:3456::1', 'private (unique local)'], ['fd00:ec2::254', 'cloud metadata'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'], ['ff02::1', 'multicast'], ['2001:db8::1', 'documentation'], ['::7f00:1', 'reserved (IPv4-compatible)'],
  ])('IPv6 %s is %s', (ip, kind) => {
    expect(addressKind(ip)).toBe(kind);
  });

  test('IPv6 forms that carry an IPv4 address are judged by that address', () => {
    expect(addressKind('::ffff:127.0.0.1')).toBe('loopback (127.0.0.1 inside IPv6)');
    expect(addressKind('::ffff:7f00:1')).toBe('loopback (127.0.0.1 inside IPv6)');
    expect(addressKind('::FFFF:A9FE:A9FE')).toBe('cloud metadata (169.254.169.254 inside IPv6)');
    expect(addressKind('::ffff:10.0.0.1')).toBe('private (10.0.0.1 inside IPv6)');
    expect(addressKind('64:ff9b::a9fe:a9fe')).toBe('cloud metadata (169.254.169.254 inside IPv6)'); // NAT64
    expect(addressKind('2002:c0a8:0101::1')).toBe('private (192.168.1.1 inside IPv6)'); // 6to4
    expect(addressKind('::ffff:8.8.8.8')).toBeUndefined();
    expect(addressKind('64:ff9b::808:808')).toBeUndefined();
  });

  test.each(['2001:4860:4860::8888', '2606:4700::1111', '2a00:1450::1'])('IPv6 %s is public', (ip) => {
    expect(addressKind(ip)).toBeUndefined();
  });

  test('parses addresses and CIDRs strictly', () => {
    expect(parseIp('example.com')).toBeUndefined();
    expect(parseIp('1.2.3')).toBeUndefined();
    expect(parseIp('::ffff:1.2.3.4')).toEqual(parseIp('::ffff:102:304'));
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('fe80::/129')).toBeUndefined();
    expect(parseCidr('10.9.8.7/8')).toEqual(parseCidr('10.0.0.0/8'));
    expect(parseCidr('192.168.1.5')).toEqual({ version: 4, base: parseIp('192.168.1.5')!.value, prefix: 32 });
  });
});

describe('OutboundPolicy', () => {
  test('without an allow-list only public addresses pass, and a refusal says what the address is', () => {
    const p = new OutboundPolicy();
    expect(p.refusal('example.com', '93.184.215.14')).toBeUndefined();
    expect(p.refusal('2606:4700::1111', '2606:4700::1111')).toBeUndefined();
    expect(p.refusal('127.0.0.1', '127.0.0.1')).toBe('127.0.0.1 is a loopback address');
    expect(p.refusal('169.254.169.254', '169.254.169.254')).toBe('169.254.169.254 is a cloud metadata address');
    expect(p.refusal('hooks.evil.example', '10.0.0.5')).toBe('hooks.evil.example (10.0.0.5) is a private address');
    expect(p.refusal('0.0.0.0', '0.0.0.0')).toBe('0.0.0.0 is an unspecified address');
    expect(p.refusal('x', 'not-an-ip')).toBe('x (not-an-ip) is not an IP address');
  });

  test('allowed CIDRs and addresses, IPv4 and IPv6; an IPv4 range covers its IPv4-mapped form', () => {
    const p = new OutboundPolicy(['127.0.0.0/8', 'fd00::/8', '192.168.1.5']);
    expect(p.refusal('127.0.0.1', '127.0.0.1')).toBeUndefined();
    expect(p.refusal('a', '127.9.9.9')).toBeUndefined();
    expect(p.refusal('::ffff:127.0.0.1', '::ffff:127.0.0.1')).toBeUndefined();
    expect(p.refusal('::1', '::1')).toBe('::1 is a loopback address');
    expect(p.refusal('a', '10.0.0.1')).toBe('a (10.0.0.1) is a private address');
    expect(p.refusal('a', 'fd00::1')).toBeUndefined();
    expect(p.refusal('a', 'fc00::1')).toMatch(/private \(unique local\)/);
    expect(p.refusal('a', '192.168.1.5')).toBeUndefined();
    expect(p.refusal('a', '192.168.1.6')).toMatch(/private address/);
  });

  test('allowed host names: exact (case and trailing dot ignored) or every subdomain with *.', () => {
    const p = new OutboundPolicy(['internal.example.com', '*.corp.example']);
    expect(p.refusal('internal.example.com', '10.0.0.5')).toBeUndefined();
    expect(p.refusal('INTERNAL.Example.com.', '10.0.0.5')).toBeUndefined();
    expect(p.refusal('x.internal.example.com', '10.0.0.5')).toMatch(/private/);
    expect(p.refusal('ci.corp.example', '169.254.169.254')).toBeUndefined();
    expect(p.refusal('a.b.corp.example', '10.0.0.5')).toBeUndefined();
    expect(p.refusal('corp.example', '10.0.0.5')).toMatch(/private/);
    expect(p.refusal('evilcorp.example', '10.0.0.5')).toMatch(/private/);
    // A host name entry is not an address entry.
    expect(p.refusal('10.0.0.5', '10.0.0.5')).toMatch(/private/);
  });

  test('invalid allow-list entries are reported one by one; the policy refuses to be built from them', () => {
    expect(allowListProblems(['10.0.0.0/8', 'localhost', '*.ok.example', '::1', 'fd00::/8'])).toEqual([]);
    expect(allowListProblems(['10.0.0.0/33', '300.1.1.1', 'fe80::/129', 'bad host!', '10.0.0.0/x'])).toEqual([
      '"10.0.0.0/33" is not a valid CIDR or IP address',
      '"300.1.1.1" is not a valid CIDR or IP address',
      '"fe80::/129" is not a valid CIDR or IP address',
      '"bad host!" is not a valid host name, CIDR or IP address',
      '"10.0.0.0/x" is not a valid CIDR or IP address',
    ]);
    expect(() => new OutboundPolicy(['10.0.0.0/33'])).toThrow('FLOWGATE_OUTBOUND_ALLOW: "10.0.0.0/33" is not a valid CIDR or IP address');
  });

  test('FLOWGATE_OUTBOUND_ALLOW: comma-separated, empty by default, a bad entry stops start-up naming the variable', () => {
    expect(loadConfig({}).outboundAllow).toEqual([]);
    expect(loadConfig({ FLOWGATE_OUTBOUND_ALLOW: ' 10.0.0.0/8, hooks.internal ,,fd00::/8' }).outboundAllow).toEqual(['10.0.0.0/8', 'hooks.internal', 'fd00::/8']);
    let problems: string[] = [];
    try {
      loadConfig({ FLOWGATE_OUTBOUND_ALLOW: '10.0.0.0/8,10.0.0.0/33,no spaces' });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      'FLOWGATE_OUTBOUND_ALLOW: "10.0.0.0/33" is not a valid CIDR or IP address',
      'FLOWGATE_OUTBOUND_ALLOW: "no spaces" is not a valid host name, CIDR or IP address',
    ]);
  });
});

/** A local server; `handle` answers by path. */
async function serve(handle: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: { method: string; path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      handle(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { seen, port, url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const redirect = (res: http.ServerResponse, status: number, location: string) => {
  res.writeHead(status, { location });
  res.end();
};

describe('guardedFetch', () => {
  let target: Awaited<ReturnType<typeof serve>>;
  let hops: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    target = await serve((req, res, body) => {
      if (req.url === '/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(JSON.stringify({ zipped: true })));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ method: req.method, path: req.url, body }));
    });
    hops = await serve((req, res) => {
      const m = /^\/(\d{3})\/(.*)$/.exec(req.url ?? '');
      if (m) return redirect(res, Number(m[1]), decodeURIComponent(m[2]));
      const loop = /^\/loop\/(\d+)$/.exec(req.url ?? '');
      if (loop) return redirect(res, 302, `/loop/${Number(loop[1]) + 1}`);
      res.writeHead(404);
      res.end();
    });
  });
  afterAll(async () => {
    await target.close();
    await hops.close();
  });
  beforeEach(() => {
    target.seen.length = 0;
    hops.seen.length = 0;
  });

  const local = guardedFetch(new OutboundPolicy(['127.0.0.0/8']));

  test('a loopback or metadata address is refused before anything is sent, and the refusal is reported first', async () => {
    const refusals: Refusal[] = [];
    const strict = guardedFetch(new OutboundPolicy(), { onRefused: (r) => { refusals.push(r); } });
    await expect(strict(`${target.url}/x`, { method: 'POST', body: 'secret' })).rejects.toThrow(OutboundRefused);
    await expect(strict(`http://[::ffff:127.0.0.1]:${target.port}/x`)).rejects.toThrow('refused: ::ffff:7f00:1 is a loopback (127.0.0.1 inside IPv6) address'); // as the URL parser writes it
    await expect(strict('http://169.254.169.254/latest/meta-data/')).rejects.toThrow('refused: 169.254.169.254 is a cloud metadata address');
    await expect(strict(`http://2130706433:${target.port}/x`)).rejects.toThrow('127.0.0.1 is a loopback address'); // decimal form
    expect(target.seen).toHaveLength(0);
    expect(refusals.map((r) => r.address)).toEqual(['127.0.0.1', '::ffff:7f00:1', '169.254.169.254', '127.0.0.1']);
  });

  test('a host name resolving to loopback is refused unless the name is allowed', async () => {
    await expect(guardedFetch(new OutboundPolicy())(`http://localhost:${target.port}/named`)).rejects.toThrow(/^refused: localhost \((127\.0\.0\.1|::1)\) is a loopback address/);
    expect(target.seen).toHaveLength(0);
    const res = await guardedFetch(new OutboundPolicy(['localhost']))(`http://localhost:${target.port}/named`);
    expect(await res.json()).toMatchObject({ path: '/named' });
  });

  test('the connection goes to the addresses checked, from one lookup: allowed ones only', async () => {
    const lookups: string[] = [];
    const answers: Record<string, { address: string; family: number }[]> = {
      // A name the system cannot resolve: reaching the server proves the checked address was used.
      'mixed.invalid': [{ address: '10.0.0.1', family: 4 }, { address: '127.0.0.1', family: 4 }],
      'private.invalid': [{ address: '10.0.0.1', family: 4 }, { address: '169.254.169.254', family: 4 }],
    };
    const fetchIt = guardedFetch(new OutboundPolicy(['127.0.0.0/8']), { lookup: async (host) => { lookups.push(host); return answers[host]; } });
    const res = await fetchIt(`http://mixed.invalid:${target.port}/mixed`);
    expect(await res.json()).toMatchObject({ path: '/mixed' });
    expect(target.seen[0].headers.host).toBe(`mixed.invalid:${target.port}`);
    expect(lookups).toEqual(['mixed.invalid']);
    await expect(fetchIt(`http://private.invalid:${target.port}/x`)).rejects.toThrow('refused: private.invalid (10.0.0.1) is a private address');
    expect(target.seen).toHaveLength(1);
  });

  test('an allowed address is called like fetch: method, headers, body, status, repeated headers', async () => {
    const res = await local(`${target.url}/echo?q=1`, { method: 'PUT', headers: { 'x-one': '1', 'content-type': 'text/plain' }, body: 'hello' });
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await res.json()).toEqual({ method: 'PUT', path: '/echo?q=1', body: 'hello' });
    expect(target.seen[0].headers).toMatchObject({ 'x-one': '1', 'content-length': '5' });
  });

  test('a compressed answer is decoded', async () => {
    const res = await local(`${target.url}/gzip`, { headers: { 'accept-encoding': 'gzip' } });
    expect(await res.json()).toEqual({ zipped: true });
  });

  test('redirects are followed and every hop is checked: one to a refused address is refused', async () => {
    const onlyLocalhost = guardedFetch(new OutboundPolicy(['localhost']));
    // localhost is allowed by name; the redirect goes to the same server by address, which is not.
    const to = encodeURIComponent(`${target.url}/inner`);
    await expect(onlyLocalhost(`http://localhost:${hops.port}/302/${to}`)).rejects.toThrow(`redirect to 127.0.0.1:${target.port} refused: 127.0.0.1 is a loopback address`);
    expect(hops.seen.map((s) => s.path)).toEqual([`/302/${to}`]);
    expect(target.seen).toHaveLength(0);
  });

  test('an allowed redirect: 303 turns a POST into a GET without body; credentials do not cross origins', async () => {
    const to = encodeURIComponent(`${target.url}/landed`);
    const res = await local(`${hops.url}/303/${to}`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json', authorization: 'Bearer t' } });
    expect(await res.json()).toEqual({ method: 'GET', path: '/landed', body: '' });
    expect(target.seen[0].headers.authorization).toBeUndefined();
    expect(target.seen[0].headers['content-type']).toBeUndefined();
    const kept = await local(`${hops.url}/307/${to}`, { method: 'POST', body: 'same' });
    expect(await kept.json()).toEqual({ method: 'POST', path: '/landed', body: 'same' });
  });

  test('more than five redirects fail', async () => {
    const err = await local(`${hops.url}/loop/0`).then(() => undefined, (e: unknown) => e as Error & { cause?: Error });
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.cause?.message).toBe('more than 5 redirects');
    expect(hops.seen).toHaveLength(6);
  });

  test('failures look like fetch failures; an aborted signal rejects with its reason', async () => {
    const closed = await serve(() => undefined);
    await closed.close();
    const err = await local(closed.url).then(() => undefined, (e: unknown) => e as Error & { cause?: { code?: string } });
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe('fetch failed');
    expect(err!.cause?.code).toBe('ECONNREFUSED');
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(local(`${target.url}/x`, { signal: controller.signal })).rejects.toThrow('stop');
    await expect(local('ftp://127.0.0.1/x')).rejects.toThrow('fetch failed');
  });
});
