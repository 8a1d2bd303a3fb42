// Test helper: a NodeModel for kubelet, kube-proxy and prereqs tests, from a few knobs (a preset of model.ts).
import type { HostFacts } from '../../src/engine/host/facts.ts';
import type { NodeModel, NodeSecrets } from '../../src/model/node-model.ts';
import { modelOf, nodeConfig } from './model.ts';

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
  const config = nodeConfig(role, { ...(o.kubernetesVersion ? { kubernetesVersion: o.kubernetesVersion } : {}), apiServerEndpoint: 'https://10.0.0.2:6443', ...o.spec });
  const secrets = o.secrets ?? (role === 'worker' ? { bootstrapToken: testToken, clusterCaCert: testCaPem } : { clusterCaCert: testCaPem });
  return modelOf(config, { ...o, secrets });
}
