import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeSpec } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { execute } from '../engine/executor.ts';
import { Graph } from '../engine/graph.ts';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import { silentLogger } from '../engine/log.ts';
import { buildGraph } from '../app/run.ts';
import type { TaskKey } from '../engine/task.ts';
import { FileTask } from '../engine/tasks/file.ts';
import { kubeProxyComponent } from '../kube-proxy/component.ts';
import { prereqsComponent } from '../node-prereqs/component.ts';
import { fakeKubeAssets, type FakeAssets } from '../../tests/golden/kubelet-support.ts';
import { kubeletComponent, kubeletConfigInput } from './component.ts';
import { defaultClusterDnsIp } from '../model/service-addresses.ts';
import { nodeLabelProblem } from './schema.ts';
import { testModel } from '../../tests/support/kubelet-model.ts';

const parseKubelet = (kubelet: unknown) => NodeSpec.safeParse({ role: 'worker', apiServerEndpoint: 'https://a:6443', kubelet });

describe('spec.kubelet', () => {
  it('has defaults for every field', () => {
    const k = NodeSpec.parse({ role: 'worker', apiServerEndpoint: 'https://a:6443' }).kubelet;
    expect(k.maxPods).toBe(110);
    expect(k.swap).toEqual({ behavior: 'NoSwap', disableHostSwap: true });
    expect(k.evictionHard['memory.available']).toBe('100Mi');
    expect(k.installKubectl).toBe(true);
    expect(k.registerWithTaints).toBeUndefined();
  });

  it('refuses node labels kubelet would refuse, naming the key', () => {
    const r = parseKubelet({ nodeLabels: { 'node-role.kubernetes.io/worker': '', 'example.com/team': 'a' } });
    expect(r.success).toBe(false);
    const issue = r.error?.issues[0];
    expect(issue?.path).toEqual(['kubelet', 'nodeLabels', 'node-role.kubernetes.io/worker']);
    expect(issue?.message).toMatch(/^kubelet may not set labels under kubernetes.io or k8s.io/);
  });

  it.each([
    ['node.kubernetes.io/pool', undefined],
    ['kubelet.kubernetes.io/x', undefined],
    ['topology.kubernetes.io/zone', undefined],
    ['example.com/team', undefined],
    ['team', undefined],
    ['kubernetes.io/role', 'restricted'],
    ['foo.k8s.io/x', 'restricted'],
    ['Bad_Prefix/x', 'prefix'],
    ['-x', 'name'],
  ])('label key %s', (key, want) => {
    const p = nodeLabelProblem(key);
    if (want === undefined) expect(p).toBeUndefined();
    else if (want === 'restricted') expect(p).toMatch(/may not set labels/);
    else if (want === 'prefix') expect(p).toMatch(/DNS subdomain/);
    else expect(p).toMatch(/expected a name/);
  });

  it('refuses bad taints, quantities and flags', () => {
    expect(parseKubelet({ registerWithTaints: [{ key: 'a', effect: 'Sometimes' }] }).success).toBe(false);
    expect(parseKubelet({ systemReserved: { memory: 'lots' } }).success).toBe(false);
    expect(parseKubelet({ systemReserved: { gpu: '1' } }).success).toBe(false);
    expect(parseKubelet({ extraArgs: { v: '2 --evil' } }).success).toBe(false);
    expect(parseKubelet({ unknownKey: 1 }).success).toBe(false);
  });
});

describe('derived kubelet config', () => {
  it.each([
    ['10.96.0.0/12', '10.96.0.10'],
    ['192.168.0.0/24', '192.168.0.10'],
    ['10.0.255.240/28', '10.0.255.250'],
    ['fd00:10:96::/112', 'fd00:10:96::a'],
  ])('cluster DNS of %s is %s', (cidr, ip) => {
    expect(defaultClusterDnsIp(cidr)).toBe(ip);
  });

  it('asks for clusterDNS when it cannot derive it', () => {
    expect(() => defaultClusterDnsIp('10.0.0.0/29')).toThrow(AgentError);
    expect(() => defaultClusterDnsIp('10.0.0.0/29')).toThrow(/set spec.kubelet.clusterDNS/);
  });

  it('taints control planes by default, never workers, and follows the user list', () => {
    expect(kubeletConfigInput(testModel({ role: 'control-plane' })).registerWithTaints).toEqual([{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }]);
    expect(kubeletConfigInput(testModel({ role: 'worker' })).registerWithTaints).toEqual([]);
    expect(kubeletConfigInput(testModel({ role: 'control-plane', spec: { kubelet: { registerWithTaints: [] } } })).registerWithTaints).toEqual([]);
  });

  it('keeps swap on and failSwapOn off for LimitedSwap; no swap task then', () => {
    const m = testModel({ spec: { kubelet: { swap: { behavior: 'LimitedSwap' } } } });
    expect(kubeletConfigInput(m)).toMatchObject({ swapBehavior: 'LimitedSwap', failSwapOn: false });
    const g = buildGraph(m, [prereqsComponent]).finish();
    expect(g.tasks.has('swap:off')).toBe(false);
    expect(buildGraph(testModel(), [prereqsComponent]).finish().tasks.has('swap:off')).toBe(true);
  });
});

describe('kubelet graph', () => {
  const keys = (m: ReturnType<typeof testModel>): string[] => [...buildGraph(m, [prereqsComponent, kubeletComponent]).finish().tasks.keys()].sort();

  it('worker: bootstrap kubeconfig, CA, flags; control plane: its own kubeconfig', () => {
    expect(keys(testModel({ role: 'worker' }))).toEqual([
      'cert-files:/var/lib/kubelet/pki',
      'dir:/etc/kubernetes/manifests',
      'download:/usr/local/bin/kubectl',
      'download:/usr/local/bin/kubelet',
      'file:/etc/kubernetes/bootstrap-kubelet.conf',
      'file:/etc/kubernetes/pki/ca.crt',
      'file:/var/lib/kubelet/config.yaml',
      'file:/var/lib/kubelet/kubelet-flags.env',
      'kmod:/etc/modules-load.d/kubernetes.conf',
      'swap:off',
      'sysctl:/etc/sysctl.d/99-kubernetes.conf',
      'unit:kubelet.service',
    ]);
    const cp = keys(testModel({ role: 'control-plane' }));
    expect(cp).toContain('file:/etc/kubernetes/kubelet.conf');
    expect(cp).not.toContain('file:/etc/kubernetes/bootstrap-kubelet.conf');
  });

  it('passes the node IP (spec.networking.nodeAddress) as --node-ip, unless extraArgs sets it', () => {
    const facts = { ipv4: ['10.0.2.15', '192.168.77.12'], interfaces: { ens3: ['10.0.2.15'], ens4: ['192.168.77.12'] }, defaultRouteInterface: 'ens3' };
    const flags = (spec: Record<string, unknown>): string => {
      const g = buildGraph(testModel({ facts, spec }), [kubeletComponent]).finish();
      return (g.tasks.get('file:/var/lib/kubelet/kubelet-flags.env') as unknown as { spec: { content: string } }).spec.content;
    };
    expect(flags({})).toMatch(/--node-ip=10\.0\.2\.15[ "]/);
    expect(flags({ networking: { nodeAddress: { cidr: '192.168.77.0/24' } } })).toMatch(/--node-ip=192\.168\.77\.12[ "]/);
    expect(flags({ networking: { nodeAddress: { interface: 'ens4' } } })).toMatch(/--node-ip=192\.168\.77\.12[ "]/);
    const own = flags({ kubelet: { extraArgs: { 'node-ip': '192.168.77.50' } } });
    expect(own.match(/--node-ip=/g)).toHaveLength(1);
    expect(own).toContain('--node-ip=192.168.77.50');
  });

  it('a node address the host does not have fails the model, not the node later', () => {
    expect(() => testModel({ spec: { networking: { nodeAddress: { cidr: '172.16.0.0/12' } } } })).toThrow(/^spec\.networking\.nodeAddress\.cidr: this host has no IPv4 address inside 172\.16\.0\.0\/12; its IPv4 addresses: eth0 10\.0\.0\.10/);
    // An image bake advertises nothing and may run without the cluster network.
    expect(testModel({ bake: true, spec: { networking: { nodeAddress: { cidr: '172.16.0.0/12' } } } }).nodeIp).toBe('10.0.0.10');
  });

  it('bake: no node identity or credentials, kubelet installed but not enabled', () => {
    const m = testModel({ role: 'worker', bake: true });
    const g = buildGraph(m, [kubeletComponent]).finish();
    expect([...g.tasks.keys()].filter((k) => k.includes('kubeconfig') || k.includes('flags') || k.includes('pki') || k.includes('.conf'))).toEqual([]);
    expect((g.tasks.get('unit:kubelet.service') as unknown as { spec: { enabled: boolean; running: boolean } }).spec).toMatchObject({ enabled: false, running: false });
  });

  it('orders the unit after containerd and the prereqs when they are in the run', () => {
    const m = testModel();
    const g = new Graph();
    g.add(new FileTask({ path: '/x', content: '', mode: 0o644 }));
    g.add({ key: 'unit:containerd.service', after: [], observe: async () => undefined, diff: () => [], apply: async () => undefined });
    prereqsComponent.build(m, g);
    kubeletComponent.build(m, g);
    const deps = g.finish().deps.get('unit:kubelet.service');
    expect(deps).toEqual(expect.arrayContaining(['unit:containerd.service', 'kmod:/etc/modules-load.d/kubernetes.conf', 'sysctl:/etc/sysctl.d/99-kubernetes.conf', 'swap:off']));
    // Alone, the unit waits for nothing it does not know.
    const alone = buildGraph(m, [kubeletComponent]).finish().deps.get('unit:kubelet.service') ?? [];
    expect(alone.some((d: TaskKey) => d.startsWith('unit:containerd'))).toBe(false);
  });

  it('a worker without its token still builds (the preflight check says why it will not join)', () => {
    const m = testModel({ role: 'worker', secrets: {} });
    const ks = [...buildGraph(m, [kubeletComponent]).finish().tasks.keys()];
    expect(ks).not.toContain('file:/etc/kubernetes/bootstrap-kubelet.conf');
  });
});

describe('kubelet restarts only when something it reads changed', () => {
  let host: TestHost;
  let assets: FakeAssets;
  beforeEach(async () => {
    host = await createTestHost({ fixture: 'debian-12' });
    assets = await fakeKubeAssets('v1.35.1');
  });
  afterEach(async () => {
    await host.dispose();
    await assets.dispose();
  });

  const run = async (mode: 'plan' | 'apply', kubelet: Record<string, unknown> = {}) => {
    const m = testModel({ spec: { assets: { overrides: assets.overrides }, kubelet } });
    const g = buildGraph(m, [prereqsComponent, kubeletComponent, kubeProxyComponent]).finish();
    return execute(g, host, { mode, log: silentLogger });
  };
  const unitResult = (r: Awaited<ReturnType<typeof run>>) => r.results.find((x) => x.key === 'unit:kubelet.service');

  it('converged: nothing to do, no reaction; changed config or binary: the unit is notified', async () => {
    const first = await run('apply');
    expect(first.ok).toBe(true);
    const converged = await run('plan');
    expect(converged.changed).toBe(0);
    expect(unitResult(converged)?.status).toBe('unchanged');

    const changed = await run('plan', { maxPods: 50 });
    expect(changed.results.filter((r) => r.status === 'planned').map((r) => r.key)).toEqual(['file:/var/lib/kubelet/config.yaml', 'unit:kubelet.service']);
    expect(unitResult(changed)?.changes).toEqual([{ field: 'restart', to: 'notified by file:/var/lib/kubelet/config.yaml' }]);

    await fsp.writeFile(path.join(host.root, 'usr/local/bin/kubelet'), 'tampered');
    const drift = await run('plan');
    expect(unitResult(drift)?.changes).toEqual([{ field: 'restart', to: 'notified by download:/usr/local/bin/kubelet' }]);
    expect(drift.results.find((r) => r.key === 'download:/usr/local/bin/kubectl')?.status).toBe('unchanged');
  });
});

describe('kube-proxy', () => {
  it('renders iptables mode when asked', () => {
    const g = buildGraph(testModel({ spec: { kubeProxy: { mode: 'iptables' } } }), [kubeProxyComponent]).finish();
    expect([...g.tasks.keys()].sort()).toEqual([
      'dir:/etc/kubernetes/manifests',
      'file:/etc/kubernetes/manifests/kube-proxy.yaml',
      'file:/var/lib/kube-proxy/config.conf',
      'file:/var/lib/kube-proxy/kubeconfig',
    ]);
  });

  it('disabled: removes a manifest an earlier run wrote, and nothing else', async () => {
    const host = await createTestHost({ fixture: 'debian-12' });
    try {
      const on = buildGraph(testModel(), [kubeProxyComponent]).finish();
      expect((await execute(on, host, { mode: 'apply', log: silentLogger })).ok).toBe(true);
      const manifest = path.join(host.root, 'etc/kubernetes/manifests/kube-proxy.yaml');
      expect(await fsp.readFile(manifest, 'utf8')).toContain('name: kube-proxy');
      const off = buildGraph(testModel({ spec: { kubeProxy: { enabled: false } } }), [kubeProxyComponent]).finish();
      expect([...off.tasks.keys()]).toEqual(['file:/etc/kubernetes/manifests/kube-proxy.yaml']);
      const r = await execute(off, host, { mode: 'apply', log: silentLogger });
      expect(r.results[0]?.changes).toEqual([{ field: 'remove', from: 'present', to: 'absent' }]);
      await expect(fsp.stat(manifest)).rejects.toThrow();
      expect((await execute(off, host, { mode: 'plan', log: silentLogger })).changed).toBe(0);
    } finally {
      await host.dispose();
    }
  });

  it('the manifest changes (so kubelet recreates the pod) exactly when config or kubeconfig change', async () => {
    const { kubeProxyFiles } = await import('../kube-proxy/component.ts');
    const a = kubeProxyFiles(testModel());
    const b = kubeProxyFiles(testModel({ spec: { kubeProxy: { mode: 'iptables' } } }));
    const c = kubeProxyFiles(testModel({ spec: { kubelet: { maxPods: 10 } } }));
    expect(a.manifest).not.toBe(b.manifest);
    expect(a.manifest).toBe(c.manifest);
    expect(b.config).toContain('mode: iptables');
  });
});
