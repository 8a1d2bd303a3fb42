// src/model owns the node's data: config documents (config.ts), NodeModel, the Component contract,
// node address, distro and versions tables (assets/), paths and keys shared between components (paths/).
// Layer: model. Imports src/engine and each component's leaf schema.ts, nothing else of the project.
// The NodeModel: the validated config plus host facts, read once. Builders read only this.
import type { BootConfig, NodeConfig, NodeSpec } from './config.ts';
import type { HostFacts } from '../engine/host/facts.ts';
import type { AssetSource } from '../engine/host/host.ts';
import { AgentError } from '../engine/errors.ts';
import { selectNodeIp } from './node-address.ts';
import { detectDistro, type Distro } from './distros.ts';
import { kubeMinor, releaseDefaults, resolveAsset, type AssetName, type KubeMinor, type ReleaseDefaults } from './assets/versions.ts';

/** The versions this node runs: the release table's row for its minor, with the config's overrides. */
export interface Versions extends ReleaseDefaults {
  readonly minor: KubeMinor;
}

/** Values loaded from the state store before building (builders stay pure). */
export interface NodeSecrets {
  /** Workers: the bootstrap token for kubelet TLS bootstrap ("<id>.<secret>"). */
  readonly bootstrapToken?: string;
  /** PEM of the cluster CA certificate (never its key on workers). */
  readonly clusterCaCert?: string;
}

export interface NodeModel {
  readonly boot: BootConfig;
  /** The node config's spec (its metadata is checked against the boot config in deriveNodeModel); role is spec.role. */
  readonly spec: NodeSpec;
  /** Host facts, read once; the CPU architecture is facts.arch. */
  readonly facts: HostFacts;
  readonly distro: Distro;
  readonly nodeName: string;
  /** The node's own IPv4 (spec.networking.nodeAddress, else the default route's interface): every component advertises it. */
  readonly nodeIp: string;
  readonly versions: Versions;
  readonly assetMirrors: readonly string[];
  /** false when working on an offline root (image bake, tests): units are enabled, never started. */
  readonly live: boolean;
  /** `nodeup bake`: prepare everything that does not depend on the node's identity. */
  readonly bake: boolean;
  readonly secrets: NodeSecrets;
}

const nodeNameRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isValidNodeName(name: string): boolean {
  return name.length <= 253 && nodeNameRe.test(name);
}

export interface DeriveOptions {
  readonly boot: BootConfig;
  readonly config: NodeConfig;
  readonly facts: HostFacts;
  readonly secrets?: NodeSecrets;
  readonly live: boolean;
  readonly bake?: boolean;
}

export function deriveNodeModel(opts: DeriveOptions): NodeModel {
  const { boot, config, facts } = opts;
  const spec = config.spec;
  if (config.metadata.cluster !== boot.clusterName || config.metadata.instanceGroup !== boot.instanceGroup) {
    throw new AgentError(
      'CONFIG_INVALID',
      `node config is for ${config.metadata.cluster}/${config.metadata.instanceGroup}, the boot config names ${boot.clusterName}/${boot.instanceGroup}`,
      { details: { field: 'metadata' } },
    );
  }
  const minor = kubeMinor(spec.kubernetesVersion);
  const d = releaseDefaults[minor];
  const versions: Versions = {
    kubernetes: spec.kubernetesVersion,
    minor,
    containerd: spec.containerd.version ?? d.containerd,
    runc: spec.assets.overrides.runc?.version ?? d.runc,
    cniPlugins: spec.assets.overrides['cni-plugins']?.version ?? d.cniPlugins,
    crictl: spec.assets.overrides.crictl?.version ?? d.crictl,
    etcd: spec.assets.overrides.etcd?.version ?? d.etcd,
    pause: d.pause,
    coredns: d.coredns,
  };
  return {
    boot,
    spec,
    facts,
    distro: detectDistro(facts.osRelease),
    nodeName: (boot.nodeName ?? facts.hostname).toLowerCase(),
    nodeIp: nodeIpFor(spec, facts, opts.bake ?? false),
    versions,
    assetMirrors: [...boot.assetMirrors, ...spec.assets.mirrors],
    live: opts.live,
    bake: opts.bake ?? false,
    secrets: opts.secrets ?? {},
  };
}

/**
 * The node IP for this run. An image bake builds nothing that advertises it and may run on a
 * builder without the cluster network, so there a missing address falls back to the default. Pure.
 */
function nodeIpFor(spec: NodeSpec, facts: HostFacts, bake: boolean): string {
  try {
    return selectNodeIp(spec.networking.nodeAddress, facts);
  } catch (err: unknown) {
    if (!bake) throw err;
    return selectNodeIp({}, facts);
  }
}

const versionOf: Record<AssetName, (v: Versions) => string> = {
  kubelet: (v) => v.kubernetes,
  kubectl: (v) => v.kubernetes,
  containerd: (v) => v.containerd,
  runc: (v) => v.runc,
  'cni-plugins': (v) => v.cniPlugins,
  crictl: (v) => v.crictl,
  etcd: (v) => v.etcd,
};

/** The verified download for an asset on this node: mirrors first, pinned hash. Pure. */
export function modelAsset(model: NodeModel, name: AssetName): AssetSource {
  return resolveAsset({
    name,
    version: versionOf[name](model.versions),
    arch: model.facts.arch,
    mirrors: model.assetMirrors,
    override: model.spec.assets.overrides[name],
  });
}

/** The control plane's own API server, on loopback: what its controller-manager and scheduler use. Pure. */
export function localApiServer(model: NodeModel): string {
  return `https://127.0.0.1:${model.spec.controlPlane.apiServer.port}`;
}

/**
 * The API server this node's kubelet and kube-proxy talk to. A control plane uses its own, on
 * loopback (as kOps does, and kubeadm's ControlPlaneKubeletLocalMode): it needs no load balancer
 * in front of spec.apiServerEndpoint while the cluster is created, and it keeps reporting when
 * another control plane's API server is down. Workers use spec.apiServerEndpoint. Pure.
 */
export function nodeApiServer(model: NodeModel): string {
  return model.spec.role === 'control-plane' ? localApiServer(model) : model.spec.apiServerEndpoint;
}
