// Pure decisions of the pod-routes sync: which routes to other nodes' pod subnets this node should
// have (from the Node objects the API server lists), and what to change in the kernel's table to
// get there. Only routes marked with nodeup's route protocol are ever touched, so routes the
// cloud, the admin or another CNI installed stay as they are.
import { parseIp, type IpFamily } from '../engine/net/cidr.ts';
import { compareText } from '../engine/text-order.ts';

/** `ip route ... proto 77`: the mark of the routes this sync owns (free in iproute2's rt_protos). */
export const routeProtocol = 77;

export interface NodeRouteInfo {
  readonly name: string;
  /** spec.podCIDRs (or the single spec.podCIDR of older objects). */
  readonly podCIDRs: readonly string[];
  /** status.addresses of type InternalIP. */
  readonly internalIPs: readonly string[];
}

export interface PodRoute {
  readonly dst: string;
  readonly via: string;
  readonly node: string;
}

export interface InstalledRoute {
  readonly dst: string;
  readonly via?: string;
}

export interface RouteActions {
  readonly replace: readonly PodRoute[];
  readonly remove: readonly InstalledRoute[];
}

interface NodeListJson {
  readonly items?: readonly {
    readonly metadata?: { readonly name?: string };
    readonly spec?: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[] };
    readonly status?: { readonly addresses?: readonly { readonly type?: string; readonly address?: string }[] };
  }[];
}

/** The route-relevant part of a NodeList body. Pure. */
export function nodesFromList(body: string): NodeRouteInfo[] {
  const list = JSON.parse(body) as NodeListJson;
  return (list.items ?? []).map((n) => ({
    name: n.metadata?.name ?? '',
    podCIDRs: n.spec?.podCIDRs?.length ? [...n.spec.podCIDRs] : n.spec?.podCIDR ? [n.spec.podCIDR] : [],
    internalIPs: (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' && a.address).map((a) => a.address ?? ''),
  }));
}

/** The family of an address or of a CIDR's address part; undefined when it does not parse. Pure. */
const familyOf = (addrOrCidr: string): IpFamily | undefined => parseIp(addrOrCidr.split('/')[0] ?? '')?.family;

/** `ip`'s family flag for a route destination. Pure. */
export const ipFamilyFlag = (dst: string): '-4' | '-6' => (familyOf(dst) === 6 ? '-6' : '-4');

/**
 * One route per pod subnet of every other node, via that node's InternalIP of the same family.
 * A node without a subnet yet (just registered) or without an address of the family is left out
 * until it has one; so is this node's own subnet (it is on the local bridge). Sorted. Pure.
 */
export function desiredRoutes(nodes: readonly NodeRouteInfo[], self: string): PodRoute[] {
  const out: PodRoute[] = [];
  const own = new Set(nodes.filter((n) => n.name === self).flatMap((n) => n.podCIDRs));
  for (const n of nodes) {
    if (n.name === self || n.name === '') continue;
    for (const dst of n.podCIDRs) {
      if (own.has(dst)) continue;
      const fam = familyOf(dst);
      const via = fam === undefined ? undefined : n.internalIPs.find((ip) => familyOf(ip) === fam);
      if (via) out.push({ dst, via, node: n.name });
    }
  }
  // Two nodes claiming one subnet (a stale object): keep the first by name, deterministically.
  const seen = new Set<string>();
  return out
    .sort((a, b) => compareText(a.dst, b.dst) || compareText(a.node, b.node))
    .filter((r) => (seen.has(r.dst) ? false : (seen.add(r.dst), true)));
}

/** Routes from `ip -j route show proto 77` (one family). Pure. */
export function parseIpRoutes(stdout: string): InstalledRoute[] {
  const text = stdout.trim();
  if (text === '') return [];
  const rows = JSON.parse(text) as { dst?: string; gateway?: string }[];
  return rows
    .filter((r) => typeof r.dst === 'string')
    .map((r) => ({ dst: normalizeDst(r.dst ?? ''), ...(r.gateway ? { via: r.gateway } : {}) }));
}

/** iproute2 prints a host route without its prefix length. */
function normalizeDst(dst: string): string {
  if (dst.includes('/')) return dst;
  return familyOf(dst) === 6 ? `${dst}/128` : `${dst}/32`;
}

/** What to change: routes missing or with another gateway are replaced, routes nobody wants removed. Pure. */
export function routeActions(installed: readonly InstalledRoute[], desired: readonly PodRoute[]): RouteActions {
  const have = new Map(installed.map((r) => [r.dst, r.via]));
  const want = new Set(desired.map((r) => r.dst));
  return {
    replace: desired.filter((r) => have.get(r.dst) !== r.via),
    remove: installed.filter((r) => !want.has(r.dst)),
  };
}
