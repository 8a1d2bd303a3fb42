// Test helper: a NodeModel for control-plane and etcd tests from a spec fragment (a preset of model.ts).
import type { HostFacts } from '../../src/engine/host/facts.ts';
import type { NodeModel, NodeSecrets } from '../../src/model/node-model.ts';
import { modelOf, nodeConfig } from './model.ts';
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
  const config = nodeConfig(role, { apiServerEndpoint: 'https://api.test.example:6443', ...o.spec });
  return modelOf(config, {
    ...(o.facts ? { facts: o.facts } : {}),
    secrets: o.secrets ?? {},
    ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
    ...(o.store ? { stateStore: o.store.url } : {}),
  });
}
