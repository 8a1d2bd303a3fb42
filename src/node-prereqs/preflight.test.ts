import { describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import type { NodeModel } from '../model/node-model.ts';
import { assertPreflight, runPreflight } from '../app/preflight.ts';
import { kubeletComponent } from '../kubelet/component.ts';
import { testModel } from '../../tests/support/kubelet-model.ts';
import { prereqsComponent } from './component.ts';
import { cgroupV1Check, containerdVersionCheck, memoryCheck, nodeNameCheck, numCpuCheck, swapCheck, versionSkewCheck } from './preflight.ts';

const GiB = 1024 ** 3;
const live = (o: Parameters<typeof testModel>[0] = {}): NodeModel => testModel({ live: true, ...o });

describe('CgroupV1', () => {
  it('fails on cgroup v1 with Kubernetes 1.35', () => {
    expect(cgroupV1Check.check(live({ facts: { cgroupVersion: 1 } }))).toBe(
      'this host runs cgroup v1 and kubelet v1.35.1 does not start on cgroup v1 (support is removed from 1.35 on): boot with the unified hierarchy (kernel argument systemd.unified_cgroup_hierarchy=1, or a distro that defaults to it), or set spec.kubernetesVersion to a 1.34 release',
    );
  });
  it('passes on cgroup v1 with 1.34, on cgroup v2, and when the version is unknown (offline root)', () => {
    expect(cgroupV1Check.check(live({ kubernetesVersion: 'v1.34.4', facts: { cgroupVersion: 1 } }))).toBeUndefined();
    expect(cgroupV1Check.check(live({ facts: { cgroupVersion: 2 } }))).toBeUndefined();
    expect(cgroupV1Check.check(testModel({ live: false, facts: { cgroupVersion: undefined } }))).toBeUndefined();
  });
});

describe('ContainerdVersion', () => {
  const with136 = (containerd: string): NodeModel => {
    const m = live({ spec: { containerd: { version: containerd } } });
    return { ...m, versions: { ...m.versions, kubernetes: 'v1.36.0' } };
  };
  it('fails on containerd 1.x with Kubernetes 1.36', () => {
    expect(containerdVersionCheck.check(with136('1.7.30'))).toBe(
      'containerd 1.7.30 is too old for Kubernetes v1.36.0: containerd 1.x support ended with Kubernetes 1.35; set spec.containerd.version to a 2.x release (or remove it to use the versions table default)',
    );
  });
  it('passes on containerd 2.x with 1.36 and on 1.x with 1.35', () => {
    expect(containerdVersionCheck.check(with136('2.2.1'))).toBeUndefined();
    expect(containerdVersionCheck.check(live({ spec: { containerd: { version: '1.7.30' } } }))).toBeUndefined();
  });
});

describe('Memory', () => {
  it('fails below the role minimum', () => {
    expect(memoryCheck.check(live({ role: 'control-plane', facts: { memoryBytes: 1 * GiB } }))).toBe(
      'this host has 1024 MiB of memory; a control-plane node needs at least 1700 MiB: use a larger machine',
    );
    expect(memoryCheck.check(live({ role: 'worker', facts: { memoryBytes: 512 * 1024 * 1024 } }))).toBe(
      'this host has 512 MiB of memory; a worker node needs at least 700 MiB: use a larger machine',
    );
  });
  it('passes with enough memory, and on an offline root whatever the builder has', () => {
    expect(memoryCheck.check(live({ role: 'control-plane', facts: { memoryBytes: 2 * GiB } }))).toBeUndefined();
    expect(memoryCheck.check(testModel({ live: false, facts: { memoryBytes: 1 } }))).toBeUndefined();
  });
});

describe('NumCPU', () => {
  it('fails below the role minimum', () => {
    expect(numCpuCheck.check(live({ role: 'control-plane', facts: { cpus: 1 } }))).toBe(
      'this host has 1 CPU; a control-plane node needs at least 2: use a larger machine',
    );
  });
  it('passes with enough CPUs and on an offline root', () => {
    expect(numCpuCheck.check(live({ role: 'worker', facts: { cpus: 1 } }))).toBeUndefined();
    expect(numCpuCheck.check(testModel({ role: 'control-plane', live: false, facts: { cpus: 1 } }))).toBeUndefined();
  });
});

describe('NodeName', () => {
  it('fails on a hostname that is not a DNS name', () => {
    expect(nodeNameCheck.check(live({ facts: { hostname: 'node_a' } }))).toBe(
      `node name "node_a" is not a valid Kubernetes node name (a lowercase DNS name: a-z, 0-9, '-' and '.', at most 253 characters): set a valid hostname, or nodeName in the boot config`,
    );
    expect(nodeNameCheck.check(live({ nodeName: 'a'.repeat(254) }))).toMatch(/is not a valid Kubernetes node name/);
  });
  it('passes on a valid name, on the boot config override, and in a bake', () => {
    expect(nodeNameCheck.check(live({ facts: { hostname: 'Node-A.example.com' } }))).toBeUndefined();
    expect(nodeNameCheck.check(live({ facts: { hostname: 'node_a' }, nodeName: 'node-a' }))).toBeUndefined();
    expect(nodeNameCheck.check(testModel({ bake: true, facts: { hostname: 'builder_1' } }))).toBeUndefined();
  });
});

describe('Swap', () => {
  it('fails when swap is on and nodeup may not turn it off', () => {
    expect(swapCheck.check(live({ facts: { swapBytes: 2 * GiB }, spec: { kubelet: { swap: { disableHostSwap: false } } } }))).toBe(
      'swap is on (2048 MiB) and spec.kubelet.swap.disableHostSwap is false: kubelet with swap behavior NoSwap refuses to start while swap is on; set disableHostSwap: true to let nodeup turn it off, or swap.behavior: LimitedSwap',
    );
  });
  it('fails on LimitedSwap with cgroup v1', () => {
    expect(swapCheck.check(live({ kubernetesVersion: 'v1.34.4', facts: { cgroupVersion: 1 }, spec: { kubelet: { swap: { behavior: 'LimitedSwap' } } } }))).toBe(
      'spec.kubelet.swap.behavior LimitedSwap needs cgroup v2 and this host runs cgroup v1: use NoSwap or boot with the unified hierarchy',
    );
  });
  it('passes when nodeup turns swap off, with LimitedSwap on cgroup v2, and on an offline root', () => {
    expect(swapCheck.check(live({ facts: { swapBytes: 2 * GiB } }))).toBeUndefined();
    expect(swapCheck.check(live({ facts: { swapBytes: 2 * GiB }, spec: { kubelet: { swap: { behavior: 'LimitedSwap' } } } }))).toBeUndefined();
    expect(swapCheck.check(testModel({ live: false, facts: { swapBytes: 2 * GiB }, spec: { kubelet: { swap: { disableHostSwap: false } } } }))).toBeUndefined();
  });
});

describe('preflight wiring', () => {
  const bad = live({ role: 'control-plane', facts: { cgroupVersion: 1, cpus: 1, memoryBytes: GiB } });
  it('reports every failing check by name, before any change', () => {
    const results = runPreflight(bad, [prereqsComponent, kubeletComponent], []);
    expect(results.filter((r) => !r.ok).map((r) => r.name)).toEqual(['CgroupV1', 'Memory', 'NumCPU']);
    let err: unknown;
    try {
      assertPreflight(results);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('PREFLIGHT_FAILED');
    expect((err as AgentError).message).toContain('[CgroupV1] this host runs cgroup v1');
    expect((err as AgentError).message).toContain('skip a check with --ignore-preflight NAME');
  });
  it('skips checks by name, or all of them', () => {
    expect(() => assertPreflight(runPreflight(bad, [prereqsComponent], ['CgroupV1', 'Memory', 'NumCPU']))).not.toThrow();
    expect(() => assertPreflight(runPreflight(bad, [prereqsComponent], ['CgroupV1', 'Memory']))).toThrow(/\[NumCPU\]/);
    expect(() => assertPreflight(runPreflight(bad, [prereqsComponent], ['all']))).not.toThrow();
  });
  it('passes on a healthy live host', () => {
    expect(runPreflight(live({ role: 'control-plane' }), [prereqsComponent, kubeletComponent], []).every((r) => r.ok)).toBe(true);
  });
});

describe('kubelet credential checks (workers)', () => {
  const check = (m: NodeModel, name: string) => kubeletComponent.preflight?.(m).find((c) => c.name === name)?.check(m);
  it('BootstrapToken fails without a token or with a malformed one', () => {
    expect(check(testModel({ secrets: { clusterCaCert: 'x' } }), 'BootstrapToken')).toBe(
      'the state store has no secrets/bootstrap-token: a worker joins with it (TLS bootstrap); apply a control-plane node first, it creates the token',
    );
    expect(check(testModel({ secrets: { bootstrapToken: 'short' } }), 'BootstrapToken')).toMatch(/is not a bootstrap token/);
    expect(check(testModel(), 'BootstrapToken')).toBeUndefined();
    expect(check(testModel({ role: 'control-plane', secrets: {} }), 'BootstrapToken')).toBeUndefined();
  });
  it('ClusterCA fails without the CA certificate', () => {
    expect(check(testModel({ secrets: { bootstrapToken: 'abcdef.0123456789abcdef' } }), 'ClusterCA')).toBe(
      'the state store has no pki/ca.crt: a worker needs the cluster CA certificate; apply a control-plane node first, it creates the PKI',
    );
    expect(check(testModel({ secrets: { bootstrapToken: 'abcdef.0123456789abcdef', clusterCaCert: 'junk' } }), 'ClusterCA')).toBe('pki/ca.crt in the state store is not a PEM certificate');
    expect(check(testModel({ bake: true, secrets: {} }), 'ClusterCA')).toBeUndefined();
  });
});

describe('VersionSkew', () => {
  const cp = (from: string | undefined, to: string): NodeModel =>
    live({ role: 'control-plane', kubernetesVersion: to, facts: from ? { convergedKubernetesVersion: from } : {} });
  it('lets a control plane stay, take a patch, move one minor up, or go back a patch', () => {
    expect(versionSkewCheck.check(cp('v1.34.4', 'v1.34.4'))).toBeUndefined();
    expect(versionSkewCheck.check(cp('v1.34.2', 'v1.34.4'))).toBeUndefined();
    expect(versionSkewCheck.check(cp('v1.34.4', 'v1.35.1'))).toBeUndefined();
    expect(versionSkewCheck.check(cp('v1.35.4', 'v1.35.1'))).toBeUndefined();
  });
  it('refuses a control plane two minors up, naming the step between', () => {
    expect(versionSkewCheck.check(cp('v1.33.7', 'v1.35.1'))).toBe(
      "this control plane last converged to v1.33.7 and the config asks for v1.35.1: a control plane moves one minor at a time (Kubernetes' version skew policy); roll out a v1.34 config to every control plane first, then v1.35.1",
    );
  });
  it('refuses a control plane one minor down', () => {
    expect(versionSkewCheck.check(cp('v1.35.1', 'v1.34.4'))).toMatch(/^this control plane last converged to v1\.35\.1 and the config asks for v1\.34\.4: going back across a minor is not supported/);
  });
  const worker = (to: string, cps?: { node: string; version: string }[]): NodeModel => live({ role: 'worker', kubernetesVersion: to, facts: cps ? { controlPlaneVersions: cps } : {} });
  it('refuses a worker whose kubelet would be newer than the oldest control plane, naming the ones behind', () => {
    expect(versionSkewCheck.check(worker('v1.35.1', [{ node: 'cp-1', version: 'v1.35.1' }, { node: 'cp-2', version: 'v1.34.4' }, { node: 'cp-3', version: 'v1.34.4' }]))).toBe(
      "this worker's kubelet would run v1.35.1, newer than the API server of cp-2 (v1.34.4), cp-3 (v1.34.4): a kubelet must not be newer than the oldest API server (Kubernetes' version skew policy); " +
        'roll the v1.35.1 config out to every control plane first. A control plane that is gone for good: delete its cluster/control-planes/<node>.json from the state store',
    );
  });
  it('lets a worker match the control planes, trail them, or take a newer patch of their minor', () => {
    const cps = [{ node: 'cp-1', version: 'v1.35.1' }, { node: 'cp-2', version: 'v1.35.0' }];
    expect(versionSkewCheck.check(worker('v1.35.1', cps))).toBeUndefined();
    expect(versionSkewCheck.check(worker('v1.35.4', cps))).toBeUndefined();
    expect(versionSkewCheck.check(worker('v1.33.8', cps))).toBeUndefined();
    expect(versionSkewCheck.check(worker('v1.35.1', []))).toBeUndefined();
    expect(versionSkewCheck.check(worker('v1.35.1'))).toBeUndefined();
  });
  it('passes for a new node, a worker and a bake', () => {
    expect(versionSkewCheck.check(cp(undefined, 'v1.35.1'))).toBeUndefined();
    expect(versionSkewCheck.check(live({ role: 'worker', kubernetesVersion: 'v1.35.1', facts: { convergedKubernetesVersion: 'v1.33.0' } }))).toBeUndefined();
    expect(versionSkewCheck.check(testModel({ role: 'control-plane', bake: true, kubernetesVersion: 'v1.35.1', facts: { convergedKubernetesVersion: 'v1.33.0' } }))).toBeUndefined();
  });
});
