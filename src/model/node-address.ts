// The node's own address: the one IPv4 every component advertises (kubelet --node-ip, etcd peer and
// client URLs, kube-apiserver --advertise-address, the serving certificates' SANs). Chosen once from
// spec.networking.nodeAddress and the host facts, in deriveNodeModel. Pure.
import { AgentError } from '../engine/errors.ts';
import type { HostFacts } from '../engine/host/facts.ts';
import { ipInCidr } from '../engine/net/cidr.ts';

/** spec.networking.nodeAddress, as validated. */
export interface NodeAddressChoice {
  readonly cidr?: string | undefined;
  readonly interface?: string | undefined;
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
  const ip = candidates.find((a) => cidr === undefined || ipInCidr(a, cidr));
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
