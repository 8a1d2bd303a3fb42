// Preflight checks about the host, run before any change (kubeadm's model: each check has a name
// that --ignore-preflight NAME skips). Checks about the live machine pass when the fact is unknown:
// on an offline root (image bake, --root) the kernel, memory and CPUs are the builder's, not the
// node's, and those checks say so in their description below and in docs/kubelet.md.
import type { PreflightCheck } from '../model/component.ts';
import { isValidNodeName, type NodeModel } from '../model/node-model.ts';
import { majorMinor, versionAtLeast } from '../engine/version.ts';

const MiB = 1024 * 1024;

/** Minimums: kubeadm's for control planes (1700 MB, 2 CPUs); a worker still needs room for kubelet and containerd. */
export const minimums = {
  'control-plane': { memoryMiB: 1700, cpus: 2 },
  worker: { memoryMiB: 700, cpus: 1 },
} as const;


/** Whether the facts describe the machine that will run kubelet (not an offline root or a bake). */
function liveHost(model: NodeModel): boolean {
  return model.live && !model.bake;
}

export const cgroupV1Check: PreflightCheck = {
  name: 'CgroupV1',
  // Kubernetes 1.35 kubelet refuses to start on cgroup v1 (failCgroupV1 defaults to true).
  // Unknown cgroup version (offline root): passes.
  check(model) {
    if (model.facts.cgroupVersion !== 1 || !versionAtLeast(model.versions.kubernetes, 1, 35)) return undefined;
    return (
      `this host runs cgroup v1 and kubelet ${model.versions.kubernetes} does not start on cgroup v1 (support is removed from 1.35 on): ` +
      'boot with the unified hierarchy (kernel argument systemd.unified_cgroup_hierarchy=1, or a distro that defaults to it), ' +
      'or set spec.kubernetesVersion to a 1.34 release'
    );
  },
};

export const containerdVersionCheck: PreflightCheck = {
  name: 'ContainerdVersion',
  // containerd 1.x is supported up to Kubernetes 1.35; from 1.36 on kubelet needs containerd 2.x.
  check(model) {
    const [major] = majorMinor(model.versions.containerd);
    if (major >= 2 || !versionAtLeast(model.versions.kubernetes, 1, 36)) return undefined;
    return (
      `containerd ${model.versions.containerd} is too old for Kubernetes ${model.versions.kubernetes}: containerd 1.x support ended with Kubernetes 1.35; ` +
      'set spec.containerd.version to a 2.x release (or remove it to use the versions table default)'
    );
  },
};

export const memoryCheck: PreflightCheck = {
  name: 'Memory',
  // Offline root: the builder's memory says nothing about the node; passes.
  check(model) {
    if (!liveHost(model)) return undefined;
    const need = minimums[model.spec.role].memoryMiB;
    const have = Math.floor(model.facts.memoryBytes / MiB);
    if (have >= need) return undefined;
    return `this host has ${have} MiB of memory; a ${model.spec.role} node needs at least ${need} MiB: use a larger machine`;
  },
};

export const numCpuCheck: PreflightCheck = {
  name: 'NumCPU',
  // Offline root: the builder's CPUs say nothing about the node; passes.
  check(model) {
    if (!liveHost(model)) return undefined;
    const need = minimums[model.spec.role].cpus;
    if (model.facts.cpus >= need) return undefined;
    return `this host has ${model.facts.cpus} CPU${model.facts.cpus === 1 ? '' : 's'}; a ${model.spec.role} node needs at least ${need}: use a larger machine`;
  },
};

export const nodeNameCheck: PreflightCheck = {
  name: 'NodeName',
  // A bake has no node identity yet; passes.
  check(model) {
    if (model.bake || isValidNodeName(model.nodeName)) return undefined;
    return (
      `node name "${model.nodeName}" is not a valid Kubernetes node name (a lowercase DNS name: a-z, 0-9, '-' and '.', at most 253 characters): ` +
      'set a valid hostname, or nodeName in the boot config'
    );
  },
};

export const swapCheck: PreflightCheck = {
  name: 'Swap',
  // Offline root: the builder's swap is not the node's; only the cgroup rule applies (and passes when unknown).
  check(model) {
    const swap = model.spec.kubelet.swap;
    if (swap.behavior === 'LimitedSwap' && model.facts.cgroupVersion === 1) {
      return 'spec.kubelet.swap.behavior LimitedSwap needs cgroup v2 and this host runs cgroup v1: use NoSwap or boot with the unified hierarchy';
    }
    if (!liveHost(model) || model.facts.swapBytes === 0 || swap.behavior !== 'NoSwap' || swap.disableHostSwap) return undefined;
    return (
      `swap is on (${Math.round(model.facts.swapBytes / MiB)} MiB) and spec.kubelet.swap.disableHostSwap is false: kubelet with swap behavior NoSwap refuses to start while swap is on; ` +
      'set disableHostSwap: true to let nodeup turn it off, or swap.behavior: LimitedSwap'
    );
  },
};

export const versionSkewCheck: PreflightCheck = {
  name: 'VersionSkew',
  // Kubernetes' version skew policy: a control plane (its API server, controller-manager,
  // scheduler, and the objects stored in etcd) moves one minor at a time and never back across a
  // minor. "From" is the version the node last converged to, from its last receipt; a new node,
  // a bake or an offline root has none and passes. Workers are not checked here (their kubelet
  // must not be newer than the API server, which this node cannot see before it joins).
  // A worker's kubelet must not be newer than the oldest API server: "oldest" from the versions the
  // control planes record in the state store when they converge (cluster/control-planes/).
  check(model) {
    if (model.spec.role !== 'control-plane') return model.bake ? undefined : workerSkew(model);
    const from = model.facts.convergedKubernetesVersion;
    if (model.bake || from === undefined) return undefined;
    const to = model.versions.kubernetes;
    const [fromMajor, fromMinor] = majorMinor(from);
    const [toMajor, toMinor] = majorMinor(to);
    if (toMajor === fromMajor && toMinor >= fromMinor && toMinor <= fromMinor + 1) return undefined;
    if (toMajor > fromMajor || (toMajor === fromMajor && toMinor > fromMinor)) {
      return (
        `this control plane last converged to ${from} and the config asks for ${to}: a control plane moves one minor at a time ` +
        `(Kubernetes' version skew policy); roll out a v${fromMajor}.${fromMinor + 1} config to every control plane first, then ${to}`
      );
    }
    return (
      `this control plane last converged to ${from} and the config asks for ${to}: going back across a minor is not supported ` +
      '(objects the newer API server stored may not read back); stay on the newer minor, or restore an etcd snapshot taken before the upgrade (nodeup etcd restore)'
    );
  },
};

/** A worker's kubelet newer (by minor) than the oldest control plane's recorded version: why; else undefined. */
function workerSkew(model: NodeModel): string | undefined {
  const cps = model.facts.controlPlaneVersions ?? [];
  if (cps.length === 0) return undefined;
  const minor = (v: string): number => {
    const [maj, min] = majorMinor(v);
    return maj * 1000 + min;
  };
  const oldest = [...cps].sort((a, b) => minor(a.version) - minor(b.version))[0] as { node: string; version: string };
  const want = model.versions.kubernetes;
  if (minor(want) <= minor(oldest.version)) return undefined;
  const behind = cps.filter((c) => minor(c.version) < minor(want)).map((c) => `${c.node} (${c.version})`);
  return (
    `this worker's kubelet would run ${want}, newer than the API server of ${behind.join(', ')}: a kubelet must not be newer than the oldest API server ` +
    `(Kubernetes' version skew policy); roll the ${want} config out to every control plane first. A control plane that is gone for good: delete its cluster/control-planes/<node>.json from the state store`
  );
}

export const hostChecks: readonly PreflightCheck[] = [cgroupV1Check, containerdVersionCheck, memoryCheck, numCpuCheck, nodeNameCheck, swapCheck, versionSkewCheck];
