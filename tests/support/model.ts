// Test helper: the one NodeModel factory every test builds on. `modelOf` turns a NodeConfig into a
// model (a BootConfig that names it, made-up host facts, secrets, live/bake); `nodeConfig` builds the
// NodeConfig from a role and a spec fragment. The presets (testModel, cpModel, packagesModel,
// modelFromCase) only choose defaults.
import type { HostFacts } from '../../src/engine/host/facts.ts';
import { testFacts } from './test-host.ts';
import { parseNodeConfig, type BootConfig, type NodeConfig } from '../../src/model/config.ts';
import { deriveNodeModel, type NodeModel, type NodeSecrets } from '../../src/model/node-model.ts';

export interface ModelOptions {
  readonly facts?: Partial<HostFacts>;
  readonly live?: boolean;
  readonly bake?: boolean;
  readonly secrets?: NodeSecrets;
  readonly nodeName?: string;
  /** The boot config's state store URL (nothing reads it: tasks get the store from their context). */
  readonly stateStore?: string;
}

export function modelOf(config: NodeConfig, o: ModelOptions = {}): NodeModel {
  const boot: BootConfig = {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'BootConfig',
    stateStore: o.stateStore ?? 'file:///nonexistent',
    clusterName: config.metadata.cluster,
    instanceGroup: config.metadata.instanceGroup,
    nodeConfigHash: 'sha256:' + '0'.repeat(64),
    assetMirrors: [],
    ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
  };
  return deriveNodeModel({ boot, config, facts: testFacts(o.facts), secrets: o.secrets ?? {}, live: o.live ?? false, bake: o.bake ?? false });
}

/** A NodeConfig of cluster `test` (instance group `nodes` or `control-plane`) with this spec. */
export function nodeConfig(role: 'worker' | 'control-plane', spec: Record<string, unknown>, source = 'test-model'): NodeConfig {
  return parseNodeConfig(
    JSON.stringify({
      apiVersion: 'nodeup.dev/v1alpha1',
      kind: 'NodeConfig',
      metadata: { cluster: 'test', instanceGroup: role === 'worker' ? 'nodes' : 'control-plane' },
      spec: { role, ...spec },
    }),
    source,
  );
}
