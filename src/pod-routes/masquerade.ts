// Outbound masquerading for the bridge network with routed per-node subnets. The bridge plugin's own
// `ipMasq` rewrites the source of everything that leaves the node's /24, pod-to-pod traffic to
// other nodes included, which breaks Kubernetes' network model (a pod sees the peer pod's own
// address, no NAT). With node routes on, nodeup turns `ipMasq` off and keeps this chain instead, the
// rule kubenet and ip-masq-agent keep: traffic from the cluster's pod CIDR to anything outside it
// that is not this node (and not multicast) leaves with the node's address; pod-to-pod traffic
// keeps its source. After kube-proxy's DNAT the destination is a real endpoint, so Service traffic
// follows the same rule.
//
// The chain is checked every round of the routes sync and rewritten (iptables-restore --noflush:
// one atomic commit of this chain only) when it differs; the jump from POSTROUTING is added when
// missing. Other tables and chains are never touched.
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';

export const masqueradeChain = 'NODEUP-POD-MASQ';
const jumpComment = "nodeup: masquerade pod traffic leaving the cluster's pod network";

export interface MasqueradeFamily {
  readonly tool: 'iptables' | 'ip6tables';
  readonly restore: 'iptables-restore' | 'ip6tables-restore';
  readonly podCIDR: string;
}

/** The tools and CIDR per family of the cluster's pod CIDRs. Pure. */
export function masqueradeFamilies(podCIDRs: readonly string[]): MasqueradeFamily[] {
  return podCIDRs.map((c) =>
    c.includes(':') ? { tool: 'ip6tables', restore: 'ip6tables-restore', podCIDR: c } : { tool: 'iptables', restore: 'iptables-restore', podCIDR: c },
  );
}

/** The chain's rules as `iptables -S CHAIN` prints them. Pure. */
export function masqueradeRules(f: MasqueradeFamily): string[] {
  const multicast = f.tool === 'iptables' ? '224.0.0.0/4' : 'ff00::/8';
  return [
    `-N ${masqueradeChain}`,
    `-A ${masqueradeChain} -d ${f.podCIDR} -j RETURN`,
    `-A ${masqueradeChain} -d ${multicast} -j RETURN`,
    `-A ${masqueradeChain} -m addrtype --dst-type LOCAL -j RETURN`,
    `-A ${masqueradeChain} -j MASQUERADE`,
  ];
}

/** The iptables-restore input that replaces the chain's rules (and only them). Pure. */
export function masqueradeRestore(f: MasqueradeFamily): string {
  return ['*nat', `:${masqueradeChain} - [0:0]`, ...masqueradeRules(f).slice(1), 'COMMIT', ''].join('\n');
}

/** The POSTROUTING rule that sends the pods' traffic through the chain (iptables -C/-A arguments). */
export function masqueradeJump(f: MasqueradeFamily): string[] {
  return ['-s', f.podCIDR, '-m', 'comment', '--comment', jumpComment, '-j', masqueradeChain];
}

const normalize = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l !== '');

/**
 * Makes the chain and its jump match, per family. Returns what was changed ([] when nothing);
 * throws with the tool's message when a command fails (the sync logs it and retries next round).
 */
export async function ensureMasquerade(host: Host, log: Logger, podCIDRs: readonly string[]): Promise<string[]> {
  const changed: string[] = [];
  for (const f of masqueradeFamilies(podCIDRs)) {
    const have = await host.run(f.tool, ['-w', '5', '-t', 'nat', '-S', masqueradeChain], { okExitCodes: [1] });
    if (have.exitCode !== 0 || normalize(have.stdout).join('\n') !== masqueradeRules(f).join('\n')) {
      await host.run(f.restore, ['-w', '5', '--noflush'], { input: masqueradeRestore(f) });
      changed.push(`${f.tool} chain ${masqueradeChain}`);
    }
    const jump = masqueradeJump(f);
    const present = await host.run(f.tool, ['-w', '5', '-t', 'nat', '-C', 'POSTROUTING', ...jump], { okExitCodes: [1] });
    if (present.exitCode !== 0) {
      await host.run(f.tool, ['-w', '5', '-t', 'nat', '-A', 'POSTROUTING', ...jump]);
      changed.push(`${f.tool} POSTROUTING jump`);
    }
  }
  if (changed.length > 0) log.info({ changed, podCIDRs }, 'pod masquerade rules set');
  return changed;
}
