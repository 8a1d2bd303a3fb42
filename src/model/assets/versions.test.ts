import { describe, expect, it } from 'vitest';
import { NodeSpec } from '../config.ts';
import { AgentError } from '../../engine/errors.ts';
import { checksums } from './checksums.ts';
import { assetNames, defaultKubernetesVersion, kubeMinor, releaseDefaults, resolveAsset, supportedMinors, type AssetName } from './versions.ts';

const versionFor = (name: AssetName, minor: keyof typeof releaseDefaults): string => {
  const d = releaseDefaults[minor];
  const byName: Record<AssetName, string> = {
    kubelet: d.kubernetes,
    kubectl: d.kubernetes,
    containerd: d.containerd,
    runc: d.runc,
    'cni-plugins': d.cniPlugins,
    crictl: d.crictl,
    etcd: d.etcd,
  };
  return byName[name];
};

describe('versions table', () => {
  it('supports 1.33, 1.34 and 1.35, default 1.35', () => {
    expect(supportedMinors).toEqual(['1.33', '1.34', '1.35']);
    expect(kubeMinor(defaultKubernetesVersion)).toBe('1.35');
    expect(NodeSpec.parse({ role: 'worker', apiServerEndpoint: 'https://a:6443' }).kubernetesVersion).toBe(defaultKubernetesVersion);
  });

  const rows = supportedMinors.flatMap((minor) => assetNames.flatMap((name) => (['amd64', 'arm64'] as const).map((arch) => ({ minor, name, arch }))));
  const hashed = rows.filter((r) => !(r.name === 'etcd' && versionFor('etcd', r.minor).startsWith('3.6.')));
  it.each(hashed)('$minor: $name has a pinned SHA-256 for $arch', ({ minor, name, arch }) => {
    const a = resolveAsset({ name, version: versionFor(name, minor), arch, mirrors: [] });
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.urls).toHaveLength(1);
    expect(a.urls[0]).toMatch(/^https:\/\//);
  });

  it('runs etcd 3.6 from Kubernetes 1.34 on and 3.5 before; a 3.6 tarball without a verified hash asks for an override', () => {
    expect(supportedMinors.map((m) => `${m}:${versionFor('etcd', m)}`)).toEqual(['1.33:3.5.21', '1.34:3.6.4', '1.35:3.6.4']);
    expect(resolveAsset({ name: 'etcd', version: '3.5.21', arch: 'arm64', mirrors: [] }).sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(() => resolveAsset({ name: 'etcd', version: '3.6.4', arch: 'amd64', mirrors: [] })).toThrow(
      'no known SHA-256 for etcd 3.6.4 linux/amd64: set spec.assets.overrides.etcd with urls and sha256',
    );
  });

  it('keeps every table entry well formed and hashes unique', () => {
    const seen = new Set<string>();
    for (const [name, versions] of Object.entries(checksums)) {
      expect(assetNames).toContain(name);
      for (const [version, arches] of Object.entries(versions)) {
        expect(version).toMatch(/^\d+\.\d+\.\d+$/);
        for (const h of [arches.amd64, arches.arm64]) {
          expect(h).toMatch(/^[0-9a-f]{64}$/);
          expect(seen.has(h as string)).toBe(false);
          seen.add(h as string);
        }
      }
    }
  });

  it('pairs containerd 2.x with 1.34 and later (1.x ends with 1.35)', () => {
    expect(releaseDefaults['1.34'].containerd.startsWith('2.')).toBe(true);
    expect(releaseDefaults['1.35'].containerd.startsWith('2.')).toBe(true);
    expect(releaseDefaults['1.35'].pause).toBe('3.10.1');
    expect(releaseDefaults['1.33'].pause).toBe('3.10');
  });

  it('builds official URLs and puts mirrors first', () => {
    const a = resolveAsset({ name: 'kubelet', version: 'v1.35.1', arch: 'arm64', mirrors: ['https://mirror.example/assets/'] });
    expect(a.urls).toEqual([
      'https://mirror.example/assets/kubelet/1.35.1/linux-arm64/kubelet',
      'https://dl.k8s.io/release/v1.35.1/bin/linux/arm64/kubelet',
    ]);
    expect(a.sha256).toBe(checksums.kubelet?.['1.35.1']?.arm64);
  });

  it('uses an override URL and hash as given, after the mirrors (at the mirror layout, named as the override\'s first URL)', () => {
    const a = resolveAsset({ name: 'etcd', version: '3.5.27', arch: 'amd64', mirrors: ['https://m'], override: { version: '3.6.5', urls: ['https://example.test/dl/etcd.tgz?sig=1', 'file:///tmp/etcd.tgz'], sha256: 'a'.repeat(64) } });
    expect(a).toEqual({
      name: 'etcd-3.6.5-amd64',
      version: '3.6.5',
      urls: ['https://m/etcd/3.6.5/linux-amd64/etcd.tgz', 'https://example.test/dl/etcd.tgz?sig=1', 'file:///tmp/etcd.tgz'],
      sha256: 'a'.repeat(64),
    });
    expect(resolveAsset({ name: 'etcd', version: '3.5.27', arch: 'amd64', mirrors: [], override: { urls: ['file:///tmp/etcd.tgz'], sha256: 'a'.repeat(64) } }).urls).toEqual(['file:///tmp/etcd.tgz']);
  });

  it('refuses a version without a known hash, naming the override to set', () => {
    let err: unknown;
    try {
      resolveAsset({ name: 'kubelet', version: 'v1.35.4', arch: 'amd64', mirrors: [] });
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('CONFIG_INVALID');
    expect((err as AgentError).message).toBe('no known SHA-256 for kubelet 1.35.4 linux/amd64: set spec.assets.overrides.kubelet with urls and sha256');
  });

  it('refuses an unsupported minor', () => {
    expect(() => kubeMinor('v1.36.0')).toThrow('spec.kubernetesVersion: v1.36.0 is not supported; supported minors: 1.33, 1.34, 1.35');
  });
});
