// Keys and paths other components may order against or use (components never import each other's
// builders; they name tasks by key: `after: [containerdUnitKey]`).
import type { NodeModel } from '../node-model.ts';
import type { TaskKey } from '../../engine/task.ts';

export const containerdUnitKey: TaskKey = 'unit:containerd.service';
export const containerdConfigPath = '/etc/containerd/config.toml';
export const containerdConfigKey: TaskKey = `file:${containerdConfigPath}`;
/** containerd's CRI socket: kubelet's containerRuntimeEndpoint is `unix://` + this. */
export const containerdSocket = '/run/containerd/containerd.sock';
export const containerdEndpoint = `unix://${containerdSocket}`;
export const containerdRoot = '/var/lib/containerd';
export const containerdState = '/run/containerd';
export const containerdCertsDir = '/etc/containerd/certs.d';
export const containerdDropInDir = '/etc/containerd/conf.d';
export const cniBinDir = '/opt/cni/bin';
export const cniConfDir = '/etc/cni/net.d';
/** The node-local bridge network nodeup writes when networking.cni is `bridge`. */
export const bridgeConflistPath = `${cniConfDir}/10-nodeup-bridge.conflist`;
/**
 * `bridge` with per-node pod subnets: the Go template containerd renders the bridge network from
 * once kubelet passes the node's spec.podCIDR (CRI UpdateRuntimeConfig), and the file it writes.
 */
export const bridgeTemplatePath = '/etc/containerd/nodeup-bridge.conflist.tmpl';
export const generatedConflistPath = `${cniConfDir}/10-containerd-net.conflist`;
/** The CNI network name of nodeup's bridge (also how nodeup recognises containerd's generated file as its own). */
export const bridgeNetworkName = 'nodeup-bridge';
export const crictlConfigPath = '/etc/crictl.yaml';
/** The CNI plugin archive's install task (CNI add-ons that need the standard plugins order after it). */
export const cniPluginsKey: TaskKey = 'archive:cni-plugins';

/** Where the containerd binaries live: the distro's package puts them in /usr/bin. Pure. */
export function containerdBinDir(source: 'release' | 'distro', distroBinDir: string): string {
  return source === 'distro' ? '/usr/bin' : distroBinDir;
}

/** The certs.d folder name of a registry: "*" is containerd's _default. Pure. */
export function hostsDirName(registry: string): string {
  return registry === '*' ? '_default' : registry;
}

/** Keys of the hosts.toml files of the configured mirrors (pulls order after them). Pure. */
export function hostsFileKeys(model: NodeModel): TaskKey[] {
  return Object.keys(model.spec.containerd.registryMirrors).map((r): TaskKey => `file:${containerdCertsDir}/${hostsDirName(r)}/hosts.toml`);
}

/** The sandbox image containerd pins (kubelet no longer takes --pod-infra-container-image). Pure. */
export function sandboxImage(model: NodeModel): string {
  return model.spec.containerd.sandboxImage ?? `registry.k8s.io/pause:${model.versions.pause}`;
}

/** ctr and crictl on this node. Pure. */
export function runtimeTools(model: NodeModel): { readonly ctr: string; readonly crictl: string } {
  return { ctr: `${containerdBinDir(model.spec.containerd.source, model.distro.binDir)}/ctr`, crictl: `${model.distro.binDir}/crictl` };
}
