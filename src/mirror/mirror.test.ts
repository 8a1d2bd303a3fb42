import { describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../model/config.ts';
import { exampleNodeConfig } from '../app/example.ts';
import { parseImageSource, skopeoCopyArgs, splitImage } from './images.ts';
import { mirrorPlan } from './plan.ts';

describe('mirrorPlan: what the nodes of the example cluster fetch', () => {
  const configs = (['control-plane', 'worker'] as const).map((role) => {
    const raw = exampleNodeConfig(role === 'worker' ? 'nodes' : 'control-plane', role);
    return { raw, config: parseNodeConfig(raw, 'example') };
  });

  it('every asset once per architecture, at the path a node asks a mirror for, with its pinned hash', () => {
    const plan = mirrorPlan(configs, ['amd64', 'arm64']);
    const paths = plan.assets.map((a) => a.path);
    expect(paths).toContain('kubelet/1.35.1/linux-amd64/kubelet');
    expect(paths).toContain('kubelet/1.35.1/linux-arm64/kubelet');
    expect(paths).toContain('containerd/2.2.1/linux-arm64/containerd-2.2.1-linux-arm64.tar.gz');
    expect(new Set(paths).size).toBe(paths.length);
    for (const a of plan.assets) {
      expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(a.upstream[0]).toMatch(/^https:\/\/(dl\.k8s\.io|github\.com)\//);
    }
    expect(plan.assets.filter((a) => a.arch === 'amd64').length).toBe(plan.assets.length / 2);
    expect(plan.notes).toEqual([]);
  });

  it('plans for nodes whose address is on their own network (nodeAddress.cidr or .interface), which the staging machine is not on', () => {
    for (const nodeAddress of ['{cidr: 192.168.77.0/24}', '{interface: ens4}']) {
      const raw = exampleNodeConfig('control-plane', 'control-plane').replace('  networking:\n', `  networking:\n    nodeAddress: ${nodeAddress}\n`);
      const plan = mirrorPlan([{ raw, config: parseNodeConfig(raw, 'cp.yaml') }], ['amd64']);
      expect(plan.assets.map((x) => x.path)).toContain('kubelet/1.35.1/linux-amd64/kubelet');
    }
  });

  it('the images of both roles (control plane, etcd, CoreDNS, kube-proxy, pause), each once', () => {
    const plan = mirrorPlan(configs, ['amd64']);
    expect(plan.images).toEqual([
      'registry.k8s.io/coredns/coredns:v1.12.1',
      'registry.k8s.io/etcd:3.6.4-0',
      'registry.k8s.io/kube-apiserver:v1.35.1',
      'registry.k8s.io/kube-controller-manager:v1.35.1',
      'registry.k8s.io/kube-proxy:v1.35.1',
      'registry.k8s.io/kube-scheduler:v1.35.1',
      'registry.k8s.io/pause:3.10.1',
    ]);
  });

  it('the packages per distro with a package manager (none for Flatcar)', () => {
    const plan = mirrorPlan(configs, ['amd64']);
    expect(plan.packages['debian-12 (apt)']).toContain('iptables');
    expect(plan.packages['rocky-9 (dnf)']).toContain('container-selinux');
    expect(Object.keys(plan.packages).some((k) => k.startsWith('flatcar'))).toBe(false);
  });
});

describe('image references and skopeo arguments', () => {
  it('splits a reference into its registry and the path a mirror keeps (docker.io for bare names)', () => {
    expect(splitImage('registry.k8s.io/coredns/coredns:v1.12.1')).toEqual({ registry: 'registry.k8s.io', rest: 'coredns/coredns:v1.12.1' });
    expect(splitImage('localhost:5000/x:1')).toEqual({ registry: 'localhost:5000', rest: 'x:1' });
    expect(splitImage('busybox:1.36')).toEqual({ registry: 'docker.io', rest: 'library/busybox:1.36' });
    expect(splitImage('bitnami/redis:7')).toEqual({ registry: 'docker.io', rest: 'bitnami/redis:7' });
  });

  it('copies every platform, keeps digests, reads from an --image-source over plain HTTP', () => {
    expect(skopeoCopyArgs('registry.k8s.io/pause:3.10.1', { kind: 'registry', registry: 'mirror.internal:5000', insecure: false }, [])).toEqual([
      'copy', '--multi-arch=all', '--preserve-digests', '--retry-times=3', 'docker://registry.k8s.io/pause:3.10.1', 'docker://mirror.internal:5000/pause:3.10.1',
    ]);
    expect(skopeoCopyArgs('registry.k8s.io/pause:3.10.1', { kind: 'oci', dir: '/srv/oci' }, [parseImageSource('registry.k8s.io=127.0.0.1:5001')])).toEqual([
      'copy', '--multi-arch=all', '--preserve-digests', '--retry-times=3', '--src-tls-verify=false', 'docker://127.0.0.1:5001/pause:3.10.1', 'oci:/srv/oci:registry.k8s.io/pause:3.10.1',
    ]);
    expect(() => parseImageSource('registry.k8s.io')).toThrow(/--image-source takes REGISTRY=HOST\[:PORT\], got 'registry.k8s.io'/);
  });
});
