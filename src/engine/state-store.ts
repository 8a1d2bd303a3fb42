// The state store: where a cluster's configs, PKI, secrets, node receipts and etcd backups live.
// file:// (the embedded default), s3:// (AWS S3 and S3-compatible servers), https:// (read-only).
import { AgentError, errorMessage } from './errors.ts';
import type { Logger } from './log.ts';
import { silentLogger } from './log.ts';
import { clockOf, exponentialBackoff, retry, sleep as wallSleep } from './retry.ts';

export interface WriteStoreOptions {
  /** Create only: fails (returns false) when the key exists. The primitive behind state-store locks. */
  readonly ifAbsent?: boolean;
  /** Secrets and private keys: stored 0600 on file://, server-side encrypted where the backend can. */
  readonly secret?: boolean;
}

export interface StateStore {
  readonly url: string;
  readonly writable: boolean;
  /** undefined when the key does not exist. Transient failures are retried with backoff. */
  read(key: string): Promise<Buffer | undefined>;
  /** Returns false only for `ifAbsent` writes whose key already existed. */
  write(key: string, data: string | Buffer, opts?: WriteStoreOptions): Promise<boolean>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<readonly string[]>;
  remove(key: string): Promise<void>;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export const defaultRetry: RetryPolicy = { attempts: 6, baseMs: 500, maxMs: 8000 };

/** Retries a state-store operation on transient errors, logging why it waits. */
export async function withRetry<T>(
  what: string,
  url: string,
  fn: () => Promise<T>,
  isTransient: (err: unknown) => boolean,
  policy: RetryPolicy,
  log: Logger = silentLogger,
  sleep: (ms: number) => Promise<void> = wallSleep,
): Promise<T> {
  try {
    return await retry(fn, {
      attempts: policy.attempts,
      delayMs: exponentialBackoff(policy.baseMs, policy.maxMs),
      isRetryable: isTransient,
      clock: clockOf({ sleep }),
      onRetry: ({ err, attempt, waitMs }) => log.warn({ store: url, op: what, attempt, waitMs, reason: errorMessage(err) }, 'state store not reachable, retrying'),
    });
  } catch (err: unknown) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('STATE_STORE', `state store ${url}: cannot ${what}: ${errorMessage(err)}`, {
      cause: err,
      details: { store: url, op: what },
    });
  }
}

/**
 * The store of a run that has none (unit tests, tools that build a graph without a cluster): any
 * use fails naming the task's need, instead of reading nothing and planning as if the store were empty.
 */
export const noStateStore: StateStore = {
  url: 'none',
  writable: false,
  read: (key) => refuseNoStore(`read ${key}`),
  write: (key) => refuseNoStore(`write ${key}`),
  list: (prefix) => refuseNoStore(`list ${prefix}`),
  remove: (key) => refuseNoStore(`remove ${key}`),
};

function refuseNoStore(what: string): Promise<never> {
  return Promise.reject(new AgentError('STATE_STORE', `this run has no state store, yet a task needs to ${what}: run it with a boot config that names one`, { details: { op: what } }));
}

export function joinKey(...parts: readonly string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
}

/** Where things live in the store, relative to the cluster's prefix. */
export const storeLayout = {
  nodeConfig: (ig: string): string => `igconfig/${ig}/node.yaml`,
  receipt: (node: string): string => `nodes/${node}/status.json`,
  pki: (name: string): string => `pki/${name}`,
  secret: (name: string): string => `secrets/${name}`,
  etcdBackups: (cluster: string): string => `backups/etcd/${cluster}/`,
  etcdControl: (cluster: string, name: string): string => `etcd/${cluster}/${name}`,
  /** One small JSON record per control plane: the Kubernetes version it last converged to (workers' skew check). */
  controlPlanes: 'cluster/control-planes/',
  controlPlane: (node: string): string => `cluster/control-planes/${node}.json`,
} as const;
