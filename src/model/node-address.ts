// The node's own address: the one IPv4 every component advertises (kubelet --node-ip, etcd peer and
// client URLs, kube-apiserver --advertise-address, the serving certificates' SANs). Chosen once from
// spec.networking.nodeAddress and the host facts, in deriveNodeModel. Pure.
import { AgentError } from '../engine/errors.ts';
import type { HostFacts } from '../engine/host/facts.ts';

/** spec.networking.nodeAddress, as validated. */
export interface NodeAddressChoice {
  readonly cidr?: string | undefined;
  readonly interface?: string | undefined;
}

/** An IPv4 address as a 32-bit unsigned number, or undefined when it is not one. Pure. */
export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** "192.168.77.0/24" -> its base and prefix length; undefined when not an IPv4 CIDR. Pure. */
export function parseIpv4Cidr(cidr: string): { readonly base: number; readonly bits: number } | undefined {
  const [addr = '', bits = '', ...rest] = cidr.split('/');
  const base = ipv4ToNumber(addr);
  if (base === undefined || rest.length > 0 || !/^\d{1,2}$/.test(bits) || Number(bits) > 32) return undefined;
  return { base, bits: Number(bits) };
}

/** Whether an IPv4 address lies inside an IPv4 CIDR. Pure. */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  const n = ipv4ToNumber(ip);
  const c = parseIpv4Cidr(cidr);
  if (n === undefined || c === undefined) return false;
  const size = 2 ** (32 - c.bits);
  return Math.floor(n / size) === Math.floor(c.base / size);
}

/** "eth0 10.0.2.15, eth1 192.168.77.11" for error messages. Pure. */
export function describeAddresses(facts: HostFacts): string {
  const parts = Object.entries(facts.interfaces).flatMap(([name, ips]) => ips.map((ip) => `${name} ${ip}`));
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/**
 * The node IP:
 *  - `interface` and/or `cidr` set: the first IPv4 of that interface / inside that CIDR (both: on
 *    the interface and inside the CIDR); none is an error naming the field and the host's addresses;
 *  - neither: the first IPv4 of the interface holding the default route, else the first IPv4 of
 *    the host, else 127.0.0.1 (a machine with no network yet).
 * Pure: throws AgentError CONFIG_INVALID.
 */
export function selectNodeIp(choice: NodeAddressChoice, facts: HostFacts): string {
  const { cidr, interface: iface } = choice;
  if (iface === undefined && cidr === undefined) {
    const viaDefault = facts.defaultRouteInterface === undefined ? undefined : facts.interfaces[facts.defaultRouteInterface]?.[0];
    return viaDefault ?? facts.ipv4[0] ?? '127.0.0.1';
  }
  const candidates = iface === undefined ? facts.ipv4 : (facts.interfaces[iface] ?? []);
  const ip = candidates.find((a) => cidr === undefined || ipv4InCidr(a, cidr));
  if (ip !== undefined) return ip;
  const field = iface !== undefined && cidr !== undefined ? 'spec.networking.nodeAddress' : iface !== undefined ? 'spec.networking.nodeAddress.interface' : 'spec.networking.nodeAddress.cidr';
  const want =
    iface !== undefined && cidr !== undefined
      ? `IPv4 address inside ${cidr} on interface ${iface}`
      : iface !== undefined
        ? `IPv4 address on interface ${iface}${facts.interfaces[iface] === undefined ? ' (no such interface, or it has no IPv4 address yet)' : ''}`
        : `IPv4 address inside ${cidr}`;
  throw new AgentError(
    'CONFIG_INVALID',
    `${field}: this host has no ${want}; its IPv4 addresses: ${describeAddresses(facts)}. Fix the field (or the host's network): every component advertises this address`,
    { details: { field, ...(cidr !== undefined ? { cidr } : {}), ...(iface !== undefined ? { interface: iface } : {}), addresses: facts.interfaces } },
  );
}
