// The versions table: for each supported Kubernetes minor, the default versions of the parts nodeup
// installs, and for every downloadable asset its official URL pattern. SHA-256s live in
// checksums.ts (facts from the upstream releases). Users override any version, URL or hash.
import type { Arch } from '../../engine/host/facts.ts';
import { AgentError } from '../../engine/errors.ts';
import type { AssetSource } from '../../engine/host/host.ts';
import type { AssetOverride } from '../../engine/schema-util.ts';
import { checksums } from './checksums.ts';

export type AssetName = 'kubelet' | 'kubectl' | 'containerd' | 'runc' | 'cni-plugins' | 'crictl' | 'etcd';
export const assetNames: readonly AssetName[] = ['kubelet', 'kubectl', 'containerd', 'runc', 'cni-plugins', 'crictl', 'etcd'];

export type KubeMinor = '1.33' | '1.34' | '1.35';

export interface ReleaseDefaults {
  /** The patch release used when a test or example names only the minor (spec default: the newest minor's). */
  readonly kubernetes: string;
  readonly containerd: string;
  readonly runc: string;
  readonly cniPlugins: string;
  readonly crictl: string;
  readonly etcd: string;
  /** The sandbox (pause) image containerd pins. */
  readonly pause: string;
  readonly coredns: string;
}

// Every version here has SHA-256s for amd64 and arm64 in checksums.ts (a test checks it). Choices:
// containerd 1.7 on 1.33 (1.x is still supported there), 2.x from 1.34 on (1.36 requires 2.x); runc
// 1.3.4 (newest 1.3 patch); CNI plugins 1.7.1 / 1.8.0 (kOps pairs them by minor the same way); crictl
// of the same minor; etcd as kubeadm pins it: 3.6 from Kubernetes 1.34 on, 3.5 before. etcd runs from
// its registry.k8s.io image by default; the release tarball (systemd mode, bakes) has a verified
// hash for 3.5 only (kubespray's table stops at 3.5.27), so etcd 3.6 tarballs need
// spec.assets.overrides.etcd with urls and sha256.
export const releaseDefaults: Readonly<Record<KubeMinor, ReleaseDefaults>> = {
  '1.33': { kubernetes: 'v1.33.8', containerd: '1.7.30', runc: '1.3.4', cniPlugins: '1.7.1', crictl: '1.33.0', etcd: '3.5.21', pause: '3.10', coredns: 'v1.12.0' },
  '1.34': { kubernetes: 'v1.34.4', containerd: '2.1.6', runc: '1.3.4', cniPlugins: '1.8.0', crictl: '1.34.0', etcd: '3.6.4', pause: '3.10.1', coredns: 'v1.12.1' },
  '1.35': { kubernetes: 'v1.35.1', containerd: '2.2.1', runc: '1.3.4', cniPlugins: '1.8.0', crictl: '1.35.0', etcd: '3.6.4', pause: '3.10.1', coredns: 'v1.12.1' },
};

/** The default spec.kubernetesVersion: the newest supported minor's pinned patch. */
export const defaultKubernetesVersion = 'v1.35.1';

export const supportedMinors = Object.keys(releaseDefaults) as KubeMinor[];

export function kubeMinor(version: string): KubeMinor {
  const m = /^v?(\d+\.\d+)\./.exec(version)?.[1];
  if (!m || !(supportedMinors as string[]).includes(m)) {
    throw new AgentError('CONFIG_INVALID', `spec.kubernetesVersion: ${version} is not supported; supported minors: ${supportedMinors.join(', ')}`, {
      details: { field: 'spec.kubernetesVersion', value: version },
    });
  }
  return m as KubeMinor;
}

/** The official download URL of an asset. Pure. */
export function officialUrl(name: AssetName, version: string, arch: Arch): string {
  const v = version.replace(/^v/, '');
  switch (name) {
    case 'kubelet':
    case 'kubectl':
      return `https://dl.k8s.io/release/v${v}/bin/linux/${arch}/${name}`;
    case 'containerd':
      return `https://github.com/containerd/containerd/releases/download/v${v}/containerd-${v}-linux-${arch}.tar.gz`;
    case 'runc':
      return `https://github.com/opencontainers/runc/releases/download/v${v}/runc.${arch}`;
    case 'cni-plugins':
      return `https://github.com/containernetworking/plugins/releases/download/v${v}/cni-plugins-linux-${arch}-v${v}.tgz`;
    case 'crictl':
      return `https://github.com/kubernetes-sigs/cri-tools/releases/download/v${v}/crictl-v${v}-linux-${arch}.tar.gz`;
    case 'etcd':
      return `https://github.com/etcd-io/etcd/releases/download/v${v}/etcd-v${v}-linux-${arch}.tar.gz`;
  }
}

/**
 * Where an asset sits on a mirror: `<mirror>/<name>/<version>/linux-<arch>/<file>`, the file named
 * as on its official URL (or, for an override, on its first URL). `nodeup mirror` stages this
 * layout. Pure.
 */
export function mirrorUrl(mirror: string, name: AssetName, version: string, arch: Arch, file = officialUrl(name, version, arch).split('/').pop() as string): string {
  return `${mirror.replace(/\/+$/, '')}/${name}/${version.replace(/^v/, '')}/linux-${arch}/${file}`;
}

/** The last path segment of a URL, without its query. */
const fileOf = (url: string): string => (url.split('?')[0] ?? url).replace(/\/+$/, '').split('/').pop() ?? url;

export interface AssetRequest {
  readonly name: AssetName;
  readonly version: string;
  readonly arch: Arch;
  readonly mirrors: readonly string[];
  readonly override?: AssetOverride | undefined;
}

/** Resolves an asset to URLs (mirrors first) and its pinned hash; no hash is a config error. */
export function resolveAsset(req: AssetRequest): AssetSource & { readonly version: string } {
  const version = (req.override?.version ?? req.version).replace(/^v/, '');
  if (req.override) {
    // Mirrors first here too: the hash is pinned either way, and an air-gapped mirror holds overrides as well.
    const file = fileOf(req.override.urls[0] as string);
    return {
      name: `${req.name}-${version}-${req.arch}`,
      version,
      urls: [...req.mirrors.map((m) => mirrorUrl(m, req.name, version, req.arch, file)), ...req.override.urls],
      sha256: req.override.sha256,
    };
  }
  const sha256 = checksums[req.name]?.[version]?.[req.arch];
  if (!sha256) {
    throw new AgentError(
      'CONFIG_INVALID',
      `no known SHA-256 for ${req.name} ${version} linux/${req.arch}: set spec.assets.overrides.${req.name} with urls and sha256`,
      { details: { field: `spec.assets.overrides.${req.name}`, asset: req.name, version, arch: req.arch } },
    );
  }
  return {
    name: `${req.name}-${version}-${req.arch}`,
    version,
    urls: [...req.mirrors.map((m) => mirrorUrl(m, req.name, version, req.arch)), officialUrl(req.name, version, req.arch)],
    sha256,
  };
}
