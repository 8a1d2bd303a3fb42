// The embedded example: a file:// state store with a two-group cluster (one control plane, workers)
// and a boot config per group. `nodeup example --dir DIR` writes it; the README's first command
// plans and applies it against a scratch root.
import { apiVersion, configHash, parseNodeConfig, type BootConfig } from '../model/config.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import * as yaml from 'js-yaml';

export const exampleCluster = 'example';

export function exampleNodeConfig(instanceGroup: string, role: 'control-plane' | 'worker'): string {
  return `# The full config of instance group "${instanceGroup}": what nodeup converges a node to.
# Every key is documented in the README (Config reference) and in schema/node-config.schema.json.
apiVersion: ${apiVersion}
kind: NodeConfig
metadata:
  cluster: ${exampleCluster}
  instanceGroup: ${instanceGroup}
spec:
  role: ${role}
  kubernetesVersion: v1.35.1
  apiServerEndpoint: https://10.0.2.15:6443
  kubelet:
    maxPods: 110
    nodeLabels:
      nodeup.dev/instance-group: ${instanceGroup}
  kubeProxy:
    mode: nftables
  networking:
    podCIDR: 10.244.0.0/16
    serviceCIDR: 10.96.0.0/12
    cni: bridge
  files:
    - path: /etc/nodeup/motd
      content: |
        This machine is a ${role} node of cluster ${exampleCluster}, managed by nodeup.
      mode: "0644"
`;
}

export interface ExampleOutput {
  readonly stateUrl: string;
  readonly boots: Readonly<Record<string, BootConfig>>;
}

/** Publishes an instance group's config and returns the boot config that pins it. */
export async function publishNodeConfig(store: StateStore, raw: string, source: string, s3?: BootConfig['s3']): Promise<BootConfig> {
  const cfg = parseNodeConfig(raw, source);
  await store.write(storeLayout.nodeConfig(cfg.metadata.instanceGroup), raw);
  return {
    apiVersion,
    kind: 'BootConfig',
    stateStore: store.url,
    clusterName: cfg.metadata.cluster,
    instanceGroup: cfg.metadata.instanceGroup,
    nodeConfigHash: configHash(raw),
    assetMirrors: [],
    ...(s3 ? { s3 } : {}),
  };
}

export function renderBootConfig(boot: BootConfig): string {
  return `# nodeup boot config: what user-data carries. No secrets here.\n${yaml.dump(boot, { lineWidth: -1, noRefs: true })}`;
}

export async function writeExample(store: StateStore): Promise<ExampleOutput> {
  const boots: Record<string, BootConfig> = {};
  for (const [ig, role] of [
    ['control-plane', 'control-plane'],
    ['nodes', 'worker'],
  ] as const) {
    boots[ig] = await publishNodeConfig(store, exampleNodeConfig(ig, role), `example/${ig}`);
  }
  return { stateUrl: store.url, boots };
}
