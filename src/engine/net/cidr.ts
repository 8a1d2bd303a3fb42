// IP addresses and CIDRs: the one implementation (parsing, containment, overlap, "the n-th address
// of a range") that config validation, the node-address choice and the builders share. Addresses are
// recognized by Node's own parser (net.isIP: no leading zeros, octets up to 255, IPv6 with an
// embedded IPv4 tail); the arithmetic runs on bigint so IPv4 and IPv6 take the same path. Pure.
// Owns nothing on disk; imports only node:net.
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A parsed CIDR: `base` is the address as written (host bits may be set), `bits` the prefix length. */
export interface Cidr {
  readonly family: IpFamily;
  readonly base: bigint;
  readonly bits: number;
}

const widthOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

function v4Value(text: string): bigint {
  return text.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
}

function v6Value(text: string): bigint {
  let s = text;
  const tail = s.slice(s.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const v4 = v4Value(tail);
    s = `${s.slice(0, s.length - tail.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = s.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Why `text` is not an IPv4 or IPv6 address, or undefined when it is one. Pure. */
export function ipProblem(text: string): string | undefined {
  if (text.includes('%')) return 'expected an address without a zone (%...)';
  if (isIP(text) !== 0) return undefined;
  if (/^\d+(\.\d+){3}$/.test(text)) {
    for (const o of text.split('.')) {
      if (Number(o) > 255) return `expected an IPv4 address: octet ${o} is above 255`;
      if (o.length > 1 && o.startsWith('0')) return `expected an IPv4 address: octet ${o} has a leading zero (octal or decimal?)`;
    }
  }
  if (text.includes(':')) return 'expected an IPv6 address such as fd00::1';
  return 'expected an IPv4 or IPv6 address such as 10.0.0.1';
}

/** An IPv4 or IPv6 address, or undefined. Pure. */
export function parseIp(text: string): IpAddress | undefined {
  if (ipProblem(text) !== undefined) return undefined;
  return isIP(text) === 4 ? { family: 4, value: v4Value(text) } : { family: 6, value: v6Value(text) };
}

/** The text form of an address: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as ::). Pure. */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export interface CidrOptions {
  /** Refuse host bits beyond the prefix (10.96.0.1/12): the value names a network. */
  readonly network?: boolean;
  /** Only this family. */
  readonly family?: IpFamily;
}

function mask(c: Cidr): bigint {
  const width = BigInt(widthOf(c.family));
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(c.bits))) - 1n);
}

/** The network of a CIDR: host bits cleared. Pure. */
export function networkOf(c: Cidr): Cidr {
  return { family: c.family, base: c.base & mask(c), bits: c.bits };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.bits}`;
}

/** Why `text` is not a CIDR (address/prefix) as `opts` asks, or undefined when it is. Pure. */
export function cidrProblem(text: string, opts: CidrOptions = {}): string | undefined {
  const slash = text.indexOf('/');
  const example = opts.family === 6 ? 'fd00:10:96::/112' : '10.96.0.0/12';
  if (slash < 0) return `expected a CIDR (address/prefix length) such as ${example}`;
  const addr = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  const bad = ipProblem(addr);
  if (bad !== undefined) return bad;
  const family: IpFamily = isIP(addr) === 4 ? 4 : 6;
  if (opts.family !== undefined && family !== opts.family) return `expected an IPv${opts.family} CIDR such as ${example}`;
  const width = widthOf(family);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > width) return `expected a prefix length from 0 to ${width} after the /, got /${prefix}`;
  if (opts.network) {
    const c = parseCidrUnchecked(addr, family, Number(prefix));
    const net = networkOf(c);
    if (net.base !== c.base) return `host bits are set after the /${c.bits}: the network is ${formatCidr(net)}`;
  }
  return undefined;
}

function parseCidrUnchecked(addr: string, family: IpFamily, bits: number): Cidr {
  return { family, base: family === 4 ? v4Value(addr) : v6Value(addr), bits };
}

/** A CIDR (host bits allowed unless opts.network), or undefined. Pure. */
export function parseCidr(text: string, opts: CidrOptions = {}): Cidr | undefined {
  if (cidrProblem(text, opts) !== undefined) return undefined;
  const slash = text.indexOf('/');
  const addr = text.slice(0, slash);
  return parseCidrUnchecked(addr, isIP(addr) === 4 ? 4 : 6, Number(text.slice(slash + 1)));
}

/** Whether an address lies inside a CIDR (of the same family). False when either does not parse. Pure. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const a = parseIp(ip);
  const c = parseCidr(cidr);
  if (a === undefined || c === undefined || a.family !== c.family) return false;
  return (a.value & mask(c)) === (c.base & mask(c));
}

/** Whether two CIDRs share an address (one contains the other). False across families or when either does not parse. Pure. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x === undefined || y === undefined || x.family !== y.family) return false;
  const shorter = x.bits <= y.bits ? x : y;
  return (x.base & mask(shorter)) === (y.base & mask(shorter));
}

/** How many addresses a CIDR holds. Pure. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(widthOf(c.family) - c.bits);
}

/**
 * The n-th address of a CIDR's network, counting the network address as 0 (the 1st is the
 * `kubernetes` Service's ClusterIP, the 10th the cluster DNS by kubeadm's convention). Undefined
 * when the CIDR does not parse or holds fewer than n + 1 addresses. Pure.
 */
export function nthAddress(cidr: string, n: number): string | undefined {
  const c = parseCidr(cidr);
  if (c === undefined || n < 0 || BigInt(n) >= cidrSize(c)) return undefined;
  return formatIp({ family: c.family, value: networkOf(c).base + BigInt(n) });
}
