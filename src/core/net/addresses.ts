import { isIP } from 'node:net';

/**
 * IP addresses as numbers, and CIDR ranges over them. Enough of IPv4 and IPv6 to classify
 * where an outbound request would connect, without depending on how the OS formats them.
 */
export interface Ip { version: 4 | 6; value: bigint }
export interface Cidr { version: 4 | 6; base: bigint; prefix: number }

const BITS = { 4: 32, 6: 128 } as const;

/** An IPv4 or IPv6 address (IPv6 may carry a zone `%eth0` or a dotted IPv4 tail); undefined if not one. */
export function parseIp(text: string): Ip | undefined {
  const s = text.trim().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const v = isIP(s);
  if (v === 4) return { version: 4, value: v4Value(s) };
  if (v === 6) return { version: 6, value: v6Value(s) };
  return undefined;
}

function v4Value(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

/** `s` is a valid IPv6 address (checked by isIP). */
function v6Value(s: string): bigint {
  let text = s.toLowerCase();
  // A dotted IPv4 tail stands for the last two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = v4Value(tail[1]);
    text = `${text.slice(0, -tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::');
  const groupsOf = (part: string | undefined) => (part ? part.split(':') : []);
  const left = groupsOf(head);
  const right = rest === undefined ? [] : groupsOf(rest);
  const zeros = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128); undefined if not one. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return undefined;
  const ip = parseIp(m[1]);
  if (!ip || m[1].includes('%')) return undefined;
  const prefix = m[2] === undefined ? BITS[ip.version] : Number(m[2]);
  if (prefix > BITS[ip.version]) return undefined;
  return { version: ip.version, base: ip.value & mask(ip.version, prefix), prefix };
}

function mask(version: 4 | 6, prefix: number): bigint {
  const bits = BigInt(BITS[version]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

export function inCidr(ip: Ip, cidr: Cidr): boolean {
  return ip.version === cidr.version && (ip.value & mask(cidr.version, cidr.prefix)) === cidr.base;
}

export function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`not a CIDR: ${text}`);
  return c;
}

export function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}
