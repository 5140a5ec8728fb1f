import { cidr, formatV4, inCidr, parseCidr, parseIp, type Cidr, type Ip } from './addresses.js';

/**
 * Which addresses an outbound request chosen by a flow, a payload or a caller may reach.
 * Anything that is not a public unicast address is refused — loopback, private, link-local,
 * cloud metadata, multicast, reserved — unless the operator allows it in FLOWGATE_OUTBOUND_ALLOW
 * (CIDRs, addresses and host names; `*.example.com` covers the subdomains of example.com).
 */

/** Checked in order: the first match names the kind (metadata before the link-local range that holds it). */
const V4: [Cidr, string][] = ([
  ['169.254.169.254/32', 'cloud metadata'],
  ['100.100.100.200/32', 'cloud metadata'],
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
] as const).map(([c, kind]) => [cidr(c), kind]);

const V6: [Cidr, string][] = ([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'reserved (IPv4-compatible)'],
  ['64:ff9b:1::/48', 'private (local NAT64)'],
  ['100::/64', 'reserved (discard)'],
  ['2001::/32', 'reserved (Teredo)'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['fc00::/7', 'private (unique local)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private (site-local)'],
  ['ff00::/8', 'multicast'],
] as const).map(([c, kind]) => [cidr(c), kind]);

/** IPv6 ranges that carry an IPv4 address: it is the IPv4 address that is reached. */
const EMBEDDED_V4: [Cidr, (v: bigint) => bigint][] = [
  [cidr('::ffff:0:0/96'), (v) => v & 0xffffffffn], // IPv4-mapped
  [cidr('64:ff9b::/96'), (v) => v & 0xffffffffn], // NAT64
  [cidr('2002::/16'), (v) => (v >> 80n) & 0xffffffffn], // 6to4
];

/** What kind of non-public address `address` is, or undefined for a public unicast address (or not an address). */
export function addressKind(address: string | Ip): string | undefined {
  const ip = typeof address === 'string' ? parseIp(address) : address;
  if (!ip) return undefined;
  if (ip.version === 6) {
    for (const [range, v4Of] of EMBEDDED_V4) {
      if (!inCidr(ip, range)) continue;
      const v4 = v4Of(ip.value);
      const kind = addressKind({ version: 4, value: v4 });
      return kind && `${kind} (${formatV4(v4)} inside IPv6)`;
    }
  }
  return (ip.version === 4 ? V4 : V6).find(([range]) => inCidr(ip, range))?.[1];
}

const HOST_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?:\\*\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** Lower case, no brackets, no trailing dot: how host names are compared. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** Why an allow-list entry is unusable, or undefined. */
function entryProblem(entry: string): string | undefined {
  if (entry.includes('/') || entry.includes(':') || /^[\d.]+$/.test(entry)) {
    return parseCidr(entry) ? undefined : `"${entry}" is not a valid CIDR or IP address`;
  }
  return HOST_NAME.test(normalizeHost(entry)) ? undefined : `"${entry}" is not a valid host name, CIDR or IP address`;
}

/** The entries of a comma-separated allow-list, blanks dropped. */
export function splitAllowList(list: string | undefined): string[] {
  return (list ?? '').split(',').map((e) => e.trim()).filter(Boolean);
}

/** Every problem with an allow-list, one per bad entry. */
export function allowListProblems(entries: string[]): string[] {
  return entries.map(entryProblem).filter((p): p is string => p !== undefined);
}

export class OutboundPolicy {
  private readonly ranges: Cidr[] = [];
  private readonly hosts = new Set<string>();
  private readonly suffixes: string[] = [];

  /** `entries` as validated by allowListProblems; an invalid entry throws. */
  constructor(readonly allow: readonly string[] = []) {
    const problems = allowListProblems([...allow]);
    if (problems.length) throw new Error(`FLOWGATE_OUTBOUND_ALLOW: ${problems.join('; ')}`);
    for (const entry of allow) {
      const range = entry.includes('/') || entry.includes(':') || /^[\d.]+$/.test(entry) ? parseCidr(entry) : undefined;
      if (range) this.ranges.push(range);
      else if (entry.startsWith('*.')) this.suffixes.push(normalizeHost(entry).slice(1));
      else this.hosts.add(normalizeHost(entry));
    }
  }

  /** The operator listed this host name: whatever it resolves to may be reached. */
  allowsHost(host: string): boolean {
    const h = normalizeHost(host);
    return this.hosts.has(h) || this.suffixes.some((s) => h.endsWith(s));
  }

  /**
   * Why connecting to `address` (what `host` resolved to) is refused, or undefined when it is
   * allowed. Something that is not an IP address is refused: only checked addresses are reached.
   */
  refusal(host: string, address: string): string | undefined {
    const ip = parseIp(address);
    const where = normalizeHost(host) === normalizeHost(address) ? address : `${host} (${address})`;
    if (!ip) return `${where} is not an IP address`;
    const kind = addressKind(ip);
    if (!kind || this.allowsHost(host) || this.ranges.some((r) => inCidr(ip, r))) return undefined;
    // An IPv4 allowed range also covers that address written as IPv4-mapped IPv6.
    if (ip.version === 6 && inCidr(ip, EMBEDDED_V4[0][0]) && this.ranges.some((r) => inCidr({ version: 4, value: ip.value & 0xffffffffn }, r))) return undefined;
    return `${where} is ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`;
  }
}
