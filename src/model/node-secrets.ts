// What a node reads from the state store's pki/ and secrets/ before its builders run. Workers get
// the cluster CA certificate and a bootstrap token, never a CA key.
//
// A worker may boot before its control plane has written them (every instance of a cluster
// launched at once, as an autoscaling group does): `nodeup apply` then waits for them, polling the
// store, up to --join-timeout (kubeadm join likewise retries its discovery until
// discovery.timeout). When the wait ends without them, the preflight checks
// BootstrapToken and ClusterCA say what is missing and what to do.
import type { NodeSecrets } from './node-model.ts';
import type { StateStore } from '../engine/state-store.ts';
import { storeLayout } from '../engine/state-store.ts';
import type { Logger } from '../engine/log.ts';

/** How a worker waits for its join material: up to timeoutMs, on the host's clock. */
export interface JoinWait {
  readonly timeoutMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly log: Logger;
}

const caKey = storeLayout.pki('ca.crt');
const tokenKey = storeLayout.secret('bootstrap-token');

/** The store keys a worker's TLS bootstrap needs that `secrets` lacks (none for a control plane). Pure. */
export function missingJoinKeys(secrets: NodeSecrets, role: 'control-plane' | 'worker'): string[] {
  if (role !== 'worker') return [];
  return [...(secrets.clusterCaCert === undefined ? [caKey] : []), ...(secrets.bootstrapToken === undefined ? [tokenKey] : [])];
}

async function readSecrets(store: StateStore, role: 'control-plane' | 'worker'): Promise<NodeSecrets> {
  const ca = await store.read(caKey);
  const token = role === 'worker' ? await store.read(tokenKey) : undefined;
  return {
    ...(ca ? { clusterCaCert: ca.toString('utf8') } : {}),
    ...(token ? { bootstrapToken: token.toString('utf8').trim() } : {}),
  };
}

/** Polls every 2 s at first, then less often, up to this. */
const maxPollMs = 15_000;
/** A progress line at most this often while waiting. */
const progressEveryMs = 30_000;

export async function loadNodeSecrets(store: StateStore, role: 'control-plane' | 'worker', wait?: JoinWait): Promise<NodeSecrets> {
  let secrets = await readSecrets(store, role);
  if (!wait || wait.timeoutMs <= 0 || missingJoinKeys(secrets, role).length === 0) return secrets;
  const started = wait.now();
  let lastProgress = -Infinity;
  let delay = 2000;
  for (;;) {
    const missing = missingJoinKeys(secrets, role);
    const waited = wait.now() - started;
    if (missing.length === 0) {
      wait.log.info({ waitedS: Math.round(waited / 1000) }, 'join material found in the state store');
      return secrets;
    }
    if (waited >= wait.timeoutMs) {
      wait.log.warn({ missing, waitedS: Math.round(waited / 1000) }, 'gave up waiting for the join material (--join-timeout)');
      return secrets;
    }
    if (wait.now() - lastProgress >= progressEveryMs) {
      wait.log.info(
        { missing, waitedS: Math.round(waited / 1000), timeoutS: Math.round(wait.timeoutMs / 1000) },
        'waiting for a control plane to write the join material to the state store',
      );
      lastProgress = wait.now();
    }
    await wait.sleep(Math.min(delay, wait.timeoutMs - waited));
    delay = Math.min(delay * 2, maxPollMs);
    secrets = await readSecrets(store, role);
  }
}
