// What a node reads from the state store's pki/ and secrets/ before its builders run. Workers get
// the cluster CA certificate and a bootstrap token, never a CA key.
import type { NodeSecrets } from './node-model.ts';
import type { StateStore } from '../engine/state-store.ts';
import { storeLayout } from '../engine/state-store.ts';

export async function loadNodeSecrets(store: StateStore, role: 'control-plane' | 'worker'): Promise<NodeSecrets> {
  const ca = await store.read(storeLayout.pki('ca.crt'));
  const token = role === 'worker' ? await store.read(storeLayout.secret('bootstrap-token')) : undefined;
  return {
    ...(ca ? { clusterCaCert: ca.toString('utf8') } : {}),
    ...(token ? { bootstrapToken: token.toString('utf8').trim() } : {}),
  };
}
