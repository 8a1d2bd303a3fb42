// Layer: component. Imports src/engine and src/model only, never another component's folder.
// prereqs: what the kernel and the host must provide before containerd and kubelet run.
// Owns: /etc/modules-load.d/kubernetes.conf (overlay, br_netfilter; loaded now on a live node),
// /etc/sysctl.d/99-kubernetes.conf (forwarding, bridge netfilter; applied live), swap off (live
// swapoff + commented fstab lines) unless kubelet is told to use swap, and the host preflight checks.
// Runs first among the node components; kubelet's unit waits for these keys.
import type { Component } from '../model/component.ts';
import type { NodeModel } from '../model/node-model.ts';
import { KmodTask } from '../engine/tasks/kmod.ts';
import { SysctlTask } from '../engine/tasks/sysctl.ts';
import { hostChecks } from './preflight.ts';
import { SwapOffTask } from './swap-task.ts';

export const kernelModules = ['overlay', 'br_netfilter'] as const;

/** The sysctls a node needs: forwarding for pod traffic, bridged traffic seen by netfilter. Pure. */
export function nodeSysctls(model: NodeModel): Record<string, string> {
  const values: Record<string, string> = {
    'net.ipv4.ip_forward': '1',
    'net.bridge.bridge-nf-call-iptables': '1',
    'net.bridge.bridge-nf-call-ip6tables': '1',
  };
  const n = model.spec.networking;
  if (n.podCIDR.includes(':') || n.serviceCIDR.includes(':')) values['net.ipv6.conf.all.forwarding'] = '1';
  return values;
}

/** Whether nodeup turns the host's swap off. Pure. */
export function disablesSwap(model: NodeModel): boolean {
  const s = model.spec.kubelet.swap;
  return s.behavior === 'NoSwap' && s.disableHostSwap;
}

export const prereqsComponent: Component = {
  name: 'prereqs',
  enabled: () => true,
  build(model, graph) {
    const kmod = new KmodTask({ name: 'kubernetes', modules: kernelModules, live: model.live });
    graph.add(kmod);
    graph.add(new SysctlTask({ name: '99-kubernetes', values: nodeSysctls(model), live: model.live, after: [kmod.key] }));
    if (disablesSwap(model)) graph.add(new SwapOffTask({ live: model.live }));
  },
  preflight: () => hostChecks,
};
