// Test helper: a NodeModel for control-plane and etcd tests from a spec fragment.
import { parseNodeConfig, type BootConfig } from '../../src/model/config.ts';
import type { HostFacts } from '../../src/engine/host/facts.ts';
import { testFacts } from '../../src/engine/host/test-host.ts';
import { deriveNodeModel, type NodeModel, type NodeSecrets } from '../../src/model/node-model.ts';
import type { StateStore } from '../../src/engine/state-store.ts';

export interface CpModelOptions {
  readonly role?: 'control-plane' | 'worker';
  readonly spec?: Record<string, unknown>;
  readonly facts?: Partial<HostFacts>;
  readonly store?: StateStore;
  readonly secrets?: NodeSecrets;
  readonly nodeName?: string;
}


export function cpModel(o: CpModelOptions = {}): NodeModel {
  const role = o.role ?? 'control-plane';
  const config = parseNodeConfig(
    JSON.stringify({
      apiVersion: 'nodeup.dev/v1alpha1',
      kind: 'NodeConfig',
      metadata: { cluster: 'test', instanceGroup: role === 'worker' ? 'nodes' : 'control-plane' },
      spec: { role, apiServerEndpoint: 'https://api.test.example:6443', ...o.spec },
    }),
    'test-model',
  );
  const boot: BootConfig = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'BootConfig',
    stateStore: o.store?.url ?? 'file:///nonexistent',
    clusterName: 'test',
    instanceGroup: config.metadata.instanceGroup,
    nodeConfigHash: 'sha256:' + '0'.repeat(64),
    assetMirrors: [],
    ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
  };
  return deriveNodeModel({ boot, config, facts: testFacts(o.facts), secrets: o.secrets ?? {}, live: false });
}
