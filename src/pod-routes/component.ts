// Layer: component. Imports src/engine and src/model only, never another component's folder.
// pod-routes: with the bridge CNI and per-node pod subnets, every node needs a route to every other
// node's subnet (the bridge itself only reaches pods on this node). nodeup-routes.service runs
// `nodeup routes`, which keeps those routes in step with the Node objects: a route per other node's
// spec.podCIDRs via its InternalIP, marked `proto 77`, added when a node gets its subnet and removed
// when the node goes (flannel's host-gw and kube-router do the same). The next hops must be on this
// node's link (one L2 segment or a cloud network that forwards pod addresses); across routed
// networks use `networking.cni: external` with an overlay CNI (docs/networking.md). The same loop
// keeps the masquerade rules for traffic leaving the pod CIDR (masquerade.ts): the bridge's own
// ipMasq is off then, so pods on two nodes see each other's addresses.
// Owns: <unitDir>/nodeup-routes.service. Runs after: kubelet's unit (it uses kubelet's kubeconfig).
// Off for bakes (no node identity), `cni: external`, `bridge.podSubnet: cluster` and
// `bridge.nodeRoutes: false`.
import type { Component } from '../model/component.ts';
import { nodeRoutesOn } from '../model/config.ts';
import type { NodeModel } from '../model/node-model.ts';
import { renderUnit } from '../engine/tasks/render-unit.ts';
import { UnitTask } from '../engine/tasks/unit.ts';

export const podRoutesUnitName = 'nodeup-routes.service';
/** kubelet's kubeconfig (nodeup writes it on control planes, kubelet after TLS bootstrap on workers). */
const kubeletKubeconfig = '/etc/kubernetes/kubelet.conf';

export interface PodRoutesUnitInput {
  readonly binary: string;
  readonly kubeconfig: string;
  readonly nodeName: string;
  readonly intervalSeconds: number;
  /** The cluster's pod CIDR: the sync keeps the masquerade rules for traffic leaving it (masquerade.ts). */
  readonly podCIDR: string;
}

export function renderPodRoutesUnit(i: PodRoutesUnitInput): string {
  return renderUnit({
    Unit: {
      Description: "nodeup routes: routes to the other nodes' pod subnets",
      Wants: 'network-online.target',
      After: ['network-online.target', 'kubelet.service'],
    },
    Service: {
      ExecStart: `${i.binary} routes --kubeconfig ${i.kubeconfig} --node ${i.nodeName} --pod-cidr ${i.podCIDR} --interval ${i.intervalSeconds} --log-format json`,
      Restart: 'always',
      RestartSec: '10s',
      // A small, long-lived process: keep it from growing unnoticed.
      MemoryMax: '256M',
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}

export const podRoutesEnabled = (m: NodeModel): boolean => !m.bake && nodeRoutesOn(m.spec.networking);

export const podRoutesComponent: Component = {
  name: 'pod-routes',
  enabled: podRoutesEnabled,
  build(model, graph) {
    graph.add(
      new UnitTask({
        name: podRoutesUnitName,
        unitDir: model.distro.unitDir,
        content: renderPodRoutesUnit({ binary: '/usr/local/bin/nodeup', kubeconfig: kubeletKubeconfig, nodeName: model.nodeName, intervalSeconds: 30, podCIDR: model.spec.networking.podCIDR }),
        enabled: true,
        running: true,
        after: graph.has('unit:kubelet.service') ? ['unit:kubelet.service'] : [],
      }),
    );
  },
};
