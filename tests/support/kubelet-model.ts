// Test helper: a NodeModel for kubelet, kube-proxy and prereqs tests, from a few knobs.
import { parseNodeConfig, type BootConfig } from '../../src/model/config.ts';
import type { HostFacts } from '../../src/engine/host/facts.ts';
import { testFacts } from '../../src/engine/host/test-host.ts';
import { deriveNodeModel, type NodeModel, type NodeSecrets } from '../../src/model/node-model.ts';

export interface TestModelOptions {
  readonly role?: 'control-plane' | 'worker';
  readonly kubernetesVersion?: string;
  /** Extra keys of spec (merged over role, version and endpoint). */
  readonly spec?: Record<string, unknown>;
  readonly facts?: Partial<HostFacts>;
  readonly live?: boolean;
  readonly bake?: boolean;
  readonly secrets?: NodeSecrets;
  readonly nodeName?: string;
}

export const testCaPem = '-----BEGIN CERTIFICATE-----\nTUlJQ1Rlc3RDQQ==\n-----END CERTIFICATE-----\n';
export const testToken = 'abcdef.0123456789abcdef';


export function testModel(o: TestModelOptions = {}): NodeModel {
  const role = o.role ?? 'worker';
  const config = parseNodeConfig(
    JSON.stringify({
      apiVersion: 'nodeup.dev/v1alpha1',
      kind: 'NodeConfig',
      metadata: { cluster: 'test', instanceGroup: role === 'worker' ? 'nodes' : 'control-plane' },
      spec: {
        role,
        ...(o.kubernetesVersion ? { kubernetesVersion: o.kubernetesVersion } : {}),
        apiServerEndpoint: 'https://10.0.0.2:6443',
        ...o.spec,
      },
    }),
    'test-model',
  );
  const boot: BootConfig = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'BootConfig',
    stateStore: 'file:///nonexistent',
    clusterName: 'test',
    instanceGroup: config.metadata.instanceGroup,
    nodeConfigHash: 'sha256:' + '0'.repeat(64),
    assetMirrors: [],
    ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
  };
  return deriveNodeModel({
    boot,
    config,
    facts: testFacts(o.facts),
    secrets: o.secrets ?? (role === 'worker' ? { bootstrapToken: testToken, clusterCaCert: testCaPem } : { clusterCaCert: testCaPem }),
    live: o.live ?? false,
    bake: o.bake ?? false,
  });
}
