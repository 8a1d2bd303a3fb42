// Keys and paths other components may order against or use (components never import each other's
// builders; they name tasks by key: `after: [containerdUnitKey]`).
import type { TaskKey } from '../agent/task.ts';

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
export const crictlConfigPath = '/etc/crictl.yaml';
/** The CNI plugin archive's install task (CNI add-ons that need the standard plugins order after it). */
export const cniPluginsKey: TaskKey = 'archive:cni-plugins';

/** Where the containerd binaries live: the distro's package puts them in /usr/bin. Pure. */
export function containerdBinDir(source: 'release' | 'distro', distroBinDir: string): string {
  return source === 'distro' ? '/usr/bin' : distroBinDir;
}
